import struct

import numpy as np
import pytest
import torch

from recommender import checkpoint
from recommender.inference import TagScorer

from .helpers import ALL_TAGS, TOPICS, new_agent, play, topic_content

torch.set_num_threads(1)


def probe_scores(agent):
    rng = np.random.default_rng(11)
    return np.stack([agent.scores(topic_content(t, rng), [*ALL_TAGS, "unseen"]) for t in TOPICS])


def test_round_trip_keeps_scores_vocabulary_and_counters():
    agent = new_agent()
    play(agent, rounds=60, rng=np.random.default_rng(0))
    blob = checkpoint.save(agent)
    assert blob.startswith(checkpoint.MAGIC)
    assert checkpoint.read_format(blob) == checkpoint.FORMAT_VERSION
    loaded = checkpoint.load(blob)
    np.testing.assert_array_equal(probe_scores(loaded), probe_scores(agent))
    assert loaded.vocabulary.to_dict() == agent.vocabulary.to_dict()
    assert (loaded.events_seen, loaded.updates) == (agent.events_seen, agent.updates)
    assert loaded.config == agent.config
    np.testing.assert_array_equal(loaded.posterior_chol(), agent.posterior_chol())
    a = TagScorer.from_bytes(checkpoint.export_scorer(agent))
    b = TagScorer.from_bytes(checkpoint.export_scorer(loaded))
    content = topic_content("music", np.random.default_rng(1))
    np.testing.assert_array_equal(a.score(content, ALL_TAGS), b.score(content, ALL_TAGS))


def test_training_resumes_exactly_where_it_stopped():
    # without replay the next update depends only on the saved state
    agent = new_agent(replay_ratio=0.0)
    play(agent, rounds=40, rng=np.random.default_rng(0))
    resumed = checkpoint.load(checkpoint.save(agent))
    for a in (agent, resumed):
        play(a, rounds=40, rng=np.random.default_rng(5))
    np.testing.assert_allclose(probe_scores(resumed), probe_scores(agent), rtol=1e-5, atol=1e-6)
    assert resumed.events_seen == agent.events_seen


def test_resumed_default_agent_keeps_learning():
    agent = new_agent()
    play(agent, rounds=30, rng=np.random.default_rng(0))
    resumed = checkpoint.load(checkpoint.save(agent))
    before = probe_scores(resumed)
    play(resumed, rounds=60, rng=np.random.default_rng(1))
    assert not np.allclose(before, probe_scores(resumed))
    assert resumed.updates > agent.updates


def test_bad_blobs_are_rejected():
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.load(b"not a checkpoint")
    blob = checkpoint.save(new_agent())
    future = checkpoint.MAGIC + struct.pack(">H", 99) + blob[len(checkpoint.MAGIC) + 2 :]
    assert checkpoint.read_format(future) == 99
    with pytest.raises(checkpoint.CheckpointError, match="unsupported"):
        checkpoint.load(future)


def test_round_trip_keeps_the_linear_term_and_the_stored_labels():
    agent = new_agent()
    rng = np.random.default_rng(4)
    agent.learn_labels([(topic_content(t, rng), [t]) for t in TOPICS for _ in range(6)])
    play(agent, rounds=20, rng=rng)
    loaded = checkpoint.load(checkpoint.save(agent))
    np.testing.assert_array_equal(loaded.linear.weight, agent.linear.weight)
    assert loaded.linear.tags == agent.linear.tags
    assert [sorted(lab) for _, lab in loaded.labels] == [sorted(lab) for _, lab in agent.labels]
    np.testing.assert_array_equal(probe_scores(loaded), probe_scores(agent))
    # the stored labels refit to the same term
    loaded.fit_linear()
    np.testing.assert_allclose(loaded.linear.weight, agent.linear.weight, atol=1e-6)


def test_a_checkpoint_from_before_the_linear_term_loads():
    agent = new_agent()
    play(agent, rounds=20, rng=np.random.default_rng(0))
    state = agent.state()
    for key in [k for k in state if k.startswith(("linear_", "label_"))]:
        del state[key]
    model = dict(state["model"])
    model["head"] = torch.cat([model["head"][:-2], model["head"][-1:]])  # no linear weight
    state["model"] = model
    state["gram"] = state["gram"][:-1, :-1]
    old = type(agent).from_state(state)
    assert old.model.head.shape == agent.model.head.shape
    assert float(old.model.head.detach()[-2]) == agent.config.linear_prior
    assert np.isfinite(probe_scores(old)).all()
