import numpy as np
import pytest
import torch

from recommender.agent import Agent, AgentConfig
from recommender.rewards import FeedbackEvent

from .helpers import ALL_TAGS, TOPICS, new_agent, play, topic_content

torch.set_num_threads(1)


def rank_of(agent: Agent, content, tag: str) -> int:
    decision = agent.scorer().recommend(content, None, k=12, explore=False)
    return decision.tags.index(tag)


def test_feedback_on_one_content_moves_its_accepted_tags_to_the_top():
    agent = new_agent()
    rng = np.random.default_rng(1)
    content = topic_content("cooking", rng)
    before = agent.scores(content, ["cooking", "baking-new", "chess"])
    assert rank_of(agent, content, "cooking") > 0, "the tag is not in the text: no free win"
    for _ in range(8):
        decision = agent.scorer().recommend(content, None, 3, rng)
        events = [FeedbackEvent(content, t, 0.0, decision.propensities[t]) for t in decision.tags]
        events.append(FeedbackEvent(content, "cooking", 1.0, 1.0))  # the viewer's own tag
        report = agent.update(events)
        assert report.events == len(events) and np.isfinite(report.loss)
    after = agent.scores(content, ["cooking", "baking-new", "chess"])
    assert rank_of(agent, content, "cooking") == 0
    assert after[0] > before[0] + 1.0
    assert after[2] < before[2], "a rejected tag goes down"


def test_agent_generalises_to_unseen_content_of_a_topic():
    agent = new_agent()
    rng = np.random.default_rng(2)
    play(agent, rounds=250, rng=rng)
    test_rng = np.random.default_rng(99)
    hits = 0
    trials = 0
    for topic in TOPICS:
        for _ in range(5):
            content = topic_content(topic, test_rng, n_words=3)
            decision = agent.scorer().recommend(content, None, 3, explore=False)
            hits += decision.tags[0] == topic
            trials += 1
    assert hits / trials >= 0.9
    assert agent.events_seen == pytest.approx(750, abs=3)


def test_update_report_and_progressive_loss_falls():
    agent = new_agent()
    rng = np.random.default_rng(3)
    content = topic_content("music", rng)
    events = [FeedbackEvent(content, "music", 1.0, 0.5), FeedbackEvent(content, "chess", 0.0, 0.5)]
    first = agent.update(events)
    for _ in range(10):
        last = agent.update(events)
    assert last.progressive_loss < first.progressive_loss
    assert last.events_seen == 22 and agent.updates == 11
    assert agent.vocabulary.count("music") == 11 and agent.vocabulary.count("chess") == 0
    assert agent.update([]).events == 0


def test_events_with_a_new_tag_train_it_and_accepted_ones_join_the_vocabulary():
    agent = new_agent()
    rng = np.random.default_rng(4)
    content = topic_content("travel", rng)
    for _ in range(5):
        agent.update([FeedbackEvent(content, "Backpacking", 1.0, 1.0)])
    assert "backpacking" in agent.vocabulary
    assert rank_of(agent, content, "backpacking") == 0


def test_invalid_events_and_configs_are_rejected():
    agent = new_agent()
    content = topic_content("music", np.random.default_rng(0))
    with pytest.raises(ValueError, match="bad event"):
        agent.update([FeedbackEvent(content, "music", 1.0, 0.0)])
    with pytest.raises(ValueError, match="bad event"):
        agent.update([FeedbackEvent(content, "music", float("nan"), 0.5)])
    with pytest.raises(ValueError, match="loss must be"):
        AgentConfig(loss="hinge")


def test_epsilon_decays_to_its_floor():
    agent = new_agent(epsilon_start=0.2, epsilon_min=0.01, epsilon_halflife=100)
    assert agent.epsilon == pytest.approx(0.2)
    agent.events_seen = 100
    assert agent.epsilon == pytest.approx(0.1)
    agent.events_seen = 10_000
    assert agent.epsilon == pytest.approx(0.01)


SQUARED = {  # priors on the reward scale instead of the logit scale
    "loss": "squared",
    "learning_rate": 0.02,
    "match_prior": (1.0, 0.5),
    "popularity_prior": 0.3,
    "bias_prior": 0.0,
    "noise_std": 0.5,
}


@pytest.mark.parametrize("overrides", [SQUARED, {"loss": "logistic"}], ids=["squared", "logistic"])
def test_both_losses_learn(overrides):
    agent = new_agent(**overrides)
    rng = np.random.default_rng(5)
    play(agent, rounds=120, rng=rng)
    content = topic_content("fitness", np.random.default_rng(7))
    assert rank_of(agent, content, "fitness") == 0


def _labelled(rng: np.random.Generator, per_topic: int = 12):
    return [(topic_content(t, rng), [t]) for t in TOPICS for _ in range(per_topic)]


def test_owner_labels_fit_the_linear_term_and_cold_content_gets_its_topic():
    agent = new_agent(linear=True)
    rng = np.random.default_rng(5)
    agent.learn_labels(_labelled(rng))
    scorer = agent.scorer()  # exporting refits the linear term on the stored labels
    assert set(scorer.linear.tags) == set(TOPICS)
    assert len(agent.labels) == 12 * len(TOPICS)
    test_rng = np.random.default_rng(77)
    hits = 0
    for topic in TOPICS:
        for _ in range(5):
            content = topic_content(topic, test_rng, n_words=3)
            hits += scorer.recommend(content, None, 1, explore=False).tags[0] == topic
            # the numpy scorer and the torch model agree, linear column included
            np.testing.assert_allclose(
                scorer.score(content, ALL_TAGS), agent.scores(content, ALL_TAGS), atol=1e-4
            )
    assert hits / (5 * len(TOPICS)) >= 0.9  # labels only: not one feedback event yet


def test_without_the_linear_term_the_bilinear_term_learns_the_labels():
    agent = new_agent(linear=False)
    agent.learn_labels(_labelled(np.random.default_rng(5)))
    # the classifier is fitted for the cold/warm gate only: the head never reads it
    assert not agent.scorer().linear_head
    assert agent.events_seen > 0  # the labels trained the two towers instead


def test_the_label_store_keeps_the_newest_labels():
    agent = new_agent(linear=True, label_store=10)
    agent.learn_labels(_labelled(np.random.default_rng(3), per_topic=5))
    assert len(agent.labels) == 10
