"""The learned tag prior: popularity exactly without text, unbiased under a biased logger."""

import numpy as np
import pytest
import torch

from recommender.features import build_content_features
from recommender.inference import TagScorer
from recommender.prior import TagPrior
from recommender.simulate import SimItem, SupervisedModel, run_simulation
from recommender.synthetic import generate_items

from .helpers import ALL_TAGS, TOPICS, new_agent, topic_content

torch.set_num_threads(1)

COUNTS = {"music": 40, "travel": 25, "cooking": 10, "fitness": 3, "chess": 0}


def test_without_informative_text_the_cold_start_is_the_popularity_ranking():
    scorer = TagScorer.untrained(COUNTS, epsilon=0.0)
    textless = build_content_features(title="zqxj", description="vvkrr")
    decision = scorer.recommend(textless, None, 5, explore=False)
    assert decision.tags == ("music", "travel", "cooking", "fitness", "chess")


def test_an_agent_taught_only_noise_ranks_tags_by_their_label_popularity():
    agent = new_agent()
    rng = np.random.default_rng(0)
    popular = ["music"] * 30 + ["travel"] * 15 + ["cooking"] * 5
    # text carries no information about the label: random nonsense words
    labelled = [
        (build_content_features(title=f"w{rng.integers(10**6)} q{rng.integers(10**6)}"), [t])
        for t in popular
    ]
    agent.learn_labels(labelled)
    fresh = build_content_features(title="unrelated words entirely")
    shown = agent.scorer().recommend(fresh, None, 3, explore=False).tags
    assert shown == ("music", "travel", "cooking")


def test_inverse_propensity_weights_undo_a_policy_that_shows_some_tags_more():
    truth = {"a": 0.5, "b": 0.2, "c": 0.05}
    rng = np.random.default_rng(1)
    prior, naive = TagPrior(halflife=1e9), TagPrior(halflife=1e9)
    for _ in range(20_000):
        # the logger shows "c" rarely, "a" always: accept counts alone favour "a"
        props = {"a": 1.0, "b": 0.5, "c": 0.1}
        shown = [t for t, p in props.items() if rng.random() < p]
        rewards = [float(rng.random() < truth[t]) for t in shown]
        prior.observe_decision(shown, rewards, [props[t] for t in shown])
        naive.observe_decision(shown, rewards, [1.0] * len(shown))
    rates = prior.rates(["a", "b", "c"], 3)
    assert rates == pytest.approx([0.5, 0.2, 0.05], abs=0.02)
    assert naive.rates(["c"], 3)[0] < 0.02  # what the unweighted count would believe


def test_the_prior_decays_and_survives_a_round_trip():
    prior = TagPrior(halflife=10.0)
    for _ in range(50):
        prior.observe_labels(["old"])
    for _ in range(50):
        prior.observe_labels(["new"])
    new, old = prior.rates(["new", "old"], 2)
    assert new > 0.9 and old < 0.1
    again = TagPrior.from_json(prior.to_json())
    np.testing.assert_allclose(again.rates(["new", "old"], 2), [new, old])


def test_the_prior_and_labels_survive_a_checkpoint():
    from recommender import checkpoint

    agent = new_agent()
    rng = np.random.default_rng(3)
    agent.learn_labels([(topic_content(t, rng), [t]) for t in TOPICS for _ in range(5)])
    restored = checkpoint.load(checkpoint.save(agent))
    content = topic_content("travel", rng)
    np.testing.assert_allclose(restored.scores(content, ALL_TAGS), agent.scores(content, ALL_TAGS))


def _items(n: int, seed: int) -> list[SimItem]:
    return [
        SimItem(text=it.text, tags=frozenset(it.tags), weight=it.weight)
        for it in generate_items(n, n_tags=12, seed=seed)
    ]


def test_the_tuned_supervised_reference_is_no_worse_than_popularity():
    items = _items(400, 4)
    warm, cold = items[:320], items[320:]
    tags = sorted({t for it in items for t in it.tags})
    feats = [it.featurize(new_agent().config.features) for it in items]
    model = SupervisedModel.tuned(
        feats[:320], [it.tags for it in warm], tags, np.random.default_rng(0)
    )
    counts = {t: sum(t in it.tags for it in warm) for t in tags}
    top = max(tags, key=lambda t: (counts[t], t))
    pop_p1 = np.mean([top in it.tags for it in cold])
    ranked = model.rank(feats[320:], 1)
    sup_p1 = np.mean([r[0] in it.tags for r, it in zip(ranked, cold, strict=True)])
    assert sup_p1 >= pop_p1
    assert model.l2 in (0.0, 1e-6, 1e-5, 1e-4, 1e-3) and model.epochs > 0


@pytest.mark.timeout(900)  # two tuned classifier fits (the agent's and the reference)
def test_the_agent_meets_both_baselines_on_held_out_items():
    result = run_simulation(_items(500, 5), events=3000, seed=5, label_epochs=2)
    policies = result["policies"]
    agent = policies["agent"]
    for name in ("popularity", "supervised"):
        assert agent["heldout_p1"] >= policies[name]["heldout_p1"] - 0.02, name
    assert agent["heldout_p1"] > policies["popularity"]["heldout_p1"] + 0.2
    assert result["supervised_choice"]["epochs"] > 0
