"""The cold/warm gate: new content is scored by the classifier fitted on the owners'
tags, and handed over to the bandit as its own feedback accumulates."""

import dataclasses

import numpy as np
import torch

from recommender import checkpoint
from recommender.content import file_content_features
from recommender.features import content_key
from recommender.rewards import FeedbackEvent

from .helpers import ALL_TAGS, DISTRACTORS, TOPICS, new_agent, topic_content

torch.set_num_threads(1)


def _labelled(rng: np.random.Generator, per_topic: int = 12):
    return [(topic_content(t, rng), [t]) for t in TOPICS for _ in range(per_topic)]


def _keyed(content, name: str):
    return dataclasses.replace(content, key=content_key(name))


def test_new_content_is_scored_by_the_owners_classifier():
    agent = new_agent()  # the default: gate on, linear column off
    agent.learn_labels(_labelled(np.random.default_rng(5)))
    scorer = agent.scorer()
    assert set(scorer.linear.tags) == set(TOPICS)
    content = _keyed(topic_content("travel", np.random.default_rng(8)), "file-new")
    assert scorer.evidence(content) == 0.0 and scorer.gate(content) == 0.0
    gated = scorer.gated_score(content, ALL_TAGS)
    classifier = scorer.linear.classifier_scores(content)
    for i, tag in enumerate(ALL_TAGS):
        if tag in TOPICS:
            assert gated[i] == np.float64(classifier[scorer.linear.index[tag]])
        else:  # a tag the classifier was not fitted on: its prior log-odds
            assert gated[i] == scorer.tag_prior[tag]
    decision = scorer.recommend(content, None, 3, explore=False)
    assert list(decision.tags) == [ALL_TAGS[i] for i in np.argsort(-gated, kind="stable")[:3]]
    # the head's linear column stays off: the bandit's score is the torch model's
    np.testing.assert_allclose(
        scorer.score(content, ALL_TAGS), agent.scores(content, ALL_TAGS), atol=1e-4
    )


def test_feedback_on_a_content_hands_it_over_to_the_bandit():
    agent = new_agent(cold_gate=3.0)
    agent.learn_labels(_labelled(np.random.default_rng(5)))
    rng = np.random.default_rng(9)
    fed = _keyed(topic_content("music", rng), "file-fed")
    twin = _keyed(fed, "file-twin")  # the same text, another file
    events = [FeedbackEvent(fed, "music", 1.0, 1.0)] + [
        FeedbackEvent(fed, tag, 0.0, 1.0) for tag in DISTRACTORS[:5]
    ]
    agent.update(events)
    scorer = agent.scorer()
    assert scorer.evidence(fed) == 6.0 and scorer.gate(fed) == 6.0 / 9.0
    assert scorer.gate(twin) == 0.0, "evidence belongs to the content, not to its text"
    g = scorer.gate(fed)
    mixed = scorer.gated_score(fed, ALL_TAGS)
    cold = scorer.gated_score(twin, ALL_TAGS)
    np.testing.assert_allclose(mixed, g * scorer.score(fed, ALL_TAGS) + (1 - g) * cold)
    # more feedback: the bandit's share grows towards 1
    agent.update(events)
    assert agent.scorer().gate(fed) == 12.0 / 15.0


def test_the_gate_off_is_the_bandit_alone_and_keeps_no_labels():
    agent = new_agent(cold_gate=0.0)
    agent.learn_labels(_labelled(np.random.default_rng(5)))
    scorer = agent.scorer()
    content = _keyed(topic_content("travel", np.random.default_rng(8)), "file-new")
    assert len(scorer.linear) == 0 and not agent.labels and scorer.gate(content) == 1.0
    np.testing.assert_array_equal(
        scorer.gated_score(content, ALL_TAGS), scorer.score(content, ALL_TAGS)
    )


def test_evidence_survives_a_checkpoint_and_the_store_keeps_the_newest():
    agent = new_agent(evidence_store=2)
    agent.learn_labels(_labelled(np.random.default_rng(5)))
    rng = np.random.default_rng(4)
    contents = [_keyed(topic_content("cooking", rng), f"file-{i}") for i in range(3)]
    for c in contents:
        agent.update([FeedbackEvent(c, "cooking", 1.0, 1.0)])
    agent.update([FeedbackEvent(contents[1], "chess", 0.0, 1.0)])
    loaded = checkpoint.load(checkpoint.save(agent))
    assert loaded.evidence == agent.evidence == {contents[2].key: 1.0, contents[1].key: 2.0}
    a, b = agent.scorer(), loaded.scorer()
    for c in contents:
        assert a.evidence(c) == b.evidence(c)
        np.testing.assert_allclose(a.gated_score(c, ALL_TAGS), b.gated_score(c, ALL_TAGS))
    assert a.evidence(contents[0]) == 0.0  # forgotten: the oldest


def test_a_file_and_its_feedback_rows_carry_the_same_key():
    file_row = {"id": "f_abc", "title": "Max at the lake", "file_type": "image"}
    feedback_row = {**file_row, "id": 17, "content_id": "f_abc"}
    key = file_content_features(file_row).key
    assert key == content_key("f_abc") != 0
    assert file_content_features(feedback_row).key == key
    assert file_content_features({"title": "no id"}).key == 0
