"""Small builders shared by the recommender tests."""

from __future__ import annotations

import numpy as np

from recommender.agent import Agent, AgentConfig
from recommender.features import ContentFeatures, build_content_features
from recommender.rewards import FeedbackEvent
from recommender.vocabulary import Vocabulary

TOPICS = {
    "cooking": "recipe oven bake flour sauce kitchen simmer dough",
    "travel": "flight hotel beach passport island journey luggage airport",
    "music": "guitar melody chord concert drums singer album piano",
    "fitness": "workout squat cardio muscle stretch treadmill sweat gym",
}
DISTRACTORS = ("chess", "finance", "politics", "anime", "crypto", "poetry", "surfing", "magic")
ALL_TAGS = (*TOPICS, *DISTRACTORS)


def topic_content(topic: str, rng: np.random.Generator, n_words: int = 5) -> ContentFeatures:
    """Content made of some of the topic's words (the tag name itself never appears)."""
    words = TOPICS[topic].split()
    picked = rng.choice(words, size=n_words, replace=False)
    return build_content_features(
        title="my new video", description=" ".join(picked), media_type="video", duration_s=42.0
    )


def new_agent(**overrides: object) -> Agent:
    vocab = Vocabulary()
    vocab.seed(ALL_TAGS)
    return Agent(AgentConfig(**overrides), vocab)  # type: ignore[arg-type]


def play(agent: Agent, rounds: int, rng: np.random.Generator, batch: int = 64) -> None:
    """Simulated viewers on topic content: accept the true tag, reject the rest."""
    scorer = agent.scorer()
    pending: list[FeedbackEvent] = []
    topics = list(TOPICS)
    for _ in range(rounds):
        topic = topics[int(rng.integers(len(topics)))]
        content = topic_content(topic, rng)
        decision = scorer.recommend(content, None, 3, rng)
        for tag in decision.tags:
            reward = 1.0 if tag == topic else 0.0
            pending.append(FeedbackEvent(content, tag, reward, decision.propensities[tag]))
        if len(pending) >= batch:
            agent.update(pending)
            pending = []
            scorer = agent.scorer()
    if pending:
        agent.update(pending)
