import numpy as np
import pytest

from recommender.evaluation import (
    LoggedRound,
    evaluate_policies,
    ips_estimate,
    logged_policy_reward,
    scorer_policy,
    uniform_policy,
)
from recommender.features import build_content_features
from recommender.inference import TagScorer

CANDIDATES = ("a", "b", "c", "d")
TRUE_REWARD = {"a": 1.0, "b": 0.5, "c": 0.0, "d": 0.0}


def always(*tags):
    def policy(round_):
        return {t: 1.0 if t in tags else 0.0 for t in round_.candidates}

    return policy


def test_exact_answer_on_a_constructed_uniform_log():
    # a uniform k=1 logger, each tag shown exactly once
    logs = [
        LoggedRound(None, CANDIDATES, (t,), (0.25,), (TRUE_REWARD[t],), k=1) for t in CANDIDATES
    ]
    best = ips_estimate(logs, always("a"))
    assert best.ips == pytest.approx(1.0) and best.snips == pytest.approx(1.0)
    assert ips_estimate(logs, always("b")).ips == pytest.approx(0.5)
    assert ips_estimate(logs, always("c")).ips == pytest.approx(0.0)
    uniform = ips_estimate(logs, uniform_policy)
    assert uniform.ips == pytest.approx(0.375) and uniform.snips == pytest.approx(0.375)
    assert logged_policy_reward(logs) == pytest.approx(0.375)
    assert best.effective_sample_size == pytest.approx(1.0)


def test_semi_bandit_log_from_a_skewed_logger_recovers_the_target_value():
    rng = np.random.default_rng(0)
    # logger shows 2 of 4: always "c", plus one of the other three uniformly
    incl = {"a": 1 / 3, "b": 1 / 3, "c": 1.0, "d": 1 / 3}
    logs = []
    for _ in range(6000):
        other = str(rng.choice(["a", "b", "d"]))
        shown = ("c", other)
        rewards = tuple(float(rng.random() < TRUE_REWARD[t]) for t in shown)
        logs.append(LoggedRound(None, CANDIDATES, shown, tuple(incl[t] for t in shown), rewards, 2))
    # logged policy: (0 + mean(1, .5, 0)) / 2 = 0.25 per shown tag
    assert logged_policy_reward(logs) == pytest.approx(0.25, abs=0.02)
    target = ips_estimate(logs, always("a", "b"))  # true value (1 + .5) / 2 = .75
    assert target.ips == pytest.approx(0.75, abs=0.04)
    assert target.snips == pytest.approx(0.75, abs=0.04)
    result = evaluate_policies(logs, {"ab": always("a", "b")})
    assert result["uniform"]["ips"] == pytest.approx(0.375, abs=0.03)  # (1+.5+0+0)/4
    assert result["ab"]["ips"] == pytest.approx(target.ips)


def test_clipping_is_reported_and_bounds_weights():
    logs = [LoggedRound(None, CANDIDATES, ("a",), (0.01,), (1.0,), k=1)]
    result = ips_estimate(logs, always("a"), clip=10.0)
    assert result.clipped == 1 and result.max_weight == 10.0 and result.ips == 10.0


def test_invalid_rounds_are_rejected():
    with pytest.raises(ValueError, match="propensities"):
        LoggedRound(None, CANDIDATES, ("a",), (0.0,), (1.0,), k=1)
    with pytest.raises(ValueError, match="equal lengths"):
        LoggedRound(None, CANDIDATES, ("a", "b"), (0.5,), (1.0,), k=2)
    assert np.isnan(ips_estimate([], uniform_policy).ips)


def test_rounds_that_store_only_the_candidate_count():
    full = [
        LoggedRound(None, CANDIDATES, (t,), (0.25,), (TRUE_REWARD[t],), k=1) for t in CANDIDATES
    ]
    slim = [
        LoggedRound(None, (), (t,), (0.25,), (TRUE_REWARD[t],), k=1, n_candidates=4)
        for t in CANDIDATES
    ]
    assert ips_estimate(slim, uniform_policy) == ips_estimate(full, uniform_policy)


def test_a_trained_scorer_can_be_evaluated_off_policy():
    scorer = TagScorer.untrained({"chess": 0, "music": 0})
    content = build_content_features("Chess openings", "the sicilian defence")
    logs = [
        LoggedRound(content, ("chess", "music"), ("chess",), (0.5,), (1.0,), k=1),
        LoggedRound(content, ("chess", "music"), ("music",), (0.5,), (0.0,), k=1),
    ]
    greedy = ips_estimate(logs, scorer_policy(scorer))  # always picks "chess" here
    assert greedy.ips == pytest.approx(1.0)
    assert ips_estimate(logs, uniform_policy).ips == pytest.approx(0.5)
