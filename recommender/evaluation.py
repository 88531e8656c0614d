"""Off-policy evaluation of tag policies from logged decisions (numpy only).

Estimand: the expected reward *per shown tag* of a target policy that shows k
tags, ``V(pi) = E_x[ sum_a pi(a in S | x) r(x, a) ] / k``. On accept/reject
feedback this is the policy's expected precision@k.

Each logged round records the candidates, the shown tags, each shown tag's
*inclusion* propensity under the logging policy (``Decision.propensities``)
and its reward. Because every shown tag has its own reward (semi-bandit), the
per-tag importance weight is ``w = pi_target(a in S | x) / pi_log(a in S | x)``:

* IPS:   ``sum_i sum_{a in S_i} w_ia r_ia / (n k)`` — unbiased when the logging
  propensities are right and positive wherever the target policy acts.
* SNIPS: ``sum w r / sum w`` — self-normalised (``E[sum_a w_a] = k``), biased
  but with much lower variance; robust to a constant error in propensities.

Weights may be clipped (``clip``) to trade bias for variance; the result
reports how many were clipped and the effective sample size
``(sum w)^2 / sum w^2`` (in per-tag units).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "LoggedRound",
    "OPEResult",
    "TargetPolicy",
    "evaluate_policies",
    "ips_estimate",
    "logged_policy_reward",
    "scorer_policy",
    "uniform_policy",
]


@dataclass(frozen=True)
class LoggedRound:
    """One logged decision: ``propensities[i]`` and ``rewards[i]`` belong to ``shown[i]``.

    ``candidates`` may be empty when only their number was stored
    (``Decision.n_candidates``): pass ``n_candidates`` then; the uniform policy needs
    only the number, and ``scorer_policy`` falls back to the scorer's vocabulary.
    """

    context: Any
    candidates: tuple[str, ...]
    shown: tuple[str, ...]
    propensities: tuple[float, ...]
    rewards: tuple[float, ...]
    k: int
    n_candidates: int | None = None

    @property
    def candidate_count(self) -> int:
        return self.n_candidates if self.n_candidates is not None else len(self.candidates)

    def __post_init__(self) -> None:
        if not len(self.shown) == len(self.propensities) == len(self.rewards):
            raise ValueError("shown, propensities and rewards must have equal lengths")
        if any(not 0.0 < p <= 1.0 for p in self.propensities):
            raise ValueError("propensities must be in (0, 1]")


#: A target policy maps a logged round to P(tag in shown set) for its candidates.
TargetPolicy = Callable[[LoggedRound], Mapping[str, float]]


@dataclass(frozen=True)
class OPEResult:
    ips: float
    snips: float
    rounds: int
    tag_rewards: int
    effective_sample_size: float
    max_weight: float
    clipped: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "ips": self.ips,
            "snips": self.snips,
            "rounds": self.rounds,
            "tag_rewards": self.tag_rewards,
            "effective_sample_size": self.effective_sample_size,
            "max_weight": self.max_weight,
            "clipped": self.clipped,
        }


def uniform_policy(round_: LoggedRound) -> dict[str, float]:
    """Uniformly random k of the candidates: inclusion probability k / n for each."""
    n = round_.candidate_count
    if n == 0:
        return {}
    p = min(round_.k, n) / n
    return dict.fromkeys(round_.candidates or round_.shown, p)


def ips_estimate(
    logs: Iterable[LoggedRound], target: TargetPolicy, clip: float | None = None
) -> OPEResult:
    """IPS and SNIPS estimates of the per-shown-tag reward of ``target``."""
    weights: list[float] = []
    rewards: list[float] = []
    total_slots = 0.0
    rounds = 0
    clipped = 0
    for r in logs:
        rounds += 1
        probs = target(r)
        total_slots += min(r.k, r.candidate_count) if r.candidate_count else r.k
        for tag, p_log, reward in zip(r.shown, r.propensities, r.rewards, strict=True):
            w = float(probs.get(tag, 0.0)) / p_log
            if clip is not None and w > clip:
                w = clip
                clipped += 1
            weights.append(w)
            rewards.append(float(reward))
    if not rounds:
        return OPEResult(float("nan"), float("nan"), 0, 0, 0.0, 0.0, 0)
    w_arr = np.asarray(weights, dtype=np.float64)
    r_arr = np.asarray(rewards, dtype=np.float64)
    weighted = float(np.dot(w_arr, r_arr))
    w_sum = float(w_arr.sum())
    w_sq = float(np.dot(w_arr, w_arr))
    return OPEResult(
        ips=weighted / total_slots if total_slots else float("nan"),
        snips=weighted / w_sum if w_sum > 0 else float("nan"),
        rounds=rounds,
        tag_rewards=len(weights),
        effective_sample_size=w_sum**2 / w_sq if w_sq > 0 else 0.0,
        max_weight=float(w_arr.max()) if w_arr.size else 0.0,
        clipped=clipped,
    )


def logged_policy_reward(logs: Iterable[LoggedRound]) -> float:
    """On-policy average reward per shown tag of the logging policy."""
    values = [float(x) for r in logs for x in r.rewards]
    return float(np.mean(values)) if values else float("nan")


def evaluate_policies(
    logs: Sequence[LoggedRound],
    targets: Mapping[str, TargetPolicy],
    clip: float | None = None,
) -> dict[str, Any]:
    """Logged reward, uniform-random estimate and each target's estimate, in one dict."""
    out: dict[str, Any] = {
        "logged": logged_policy_reward(logs),
        "uniform": ips_estimate(logs, uniform_policy, clip).to_dict(),
    }
    for name, policy in targets.items():
        out[name] = ips_estimate(logs, policy, clip).to_dict()
    return out


def scorer_policy(
    scorer: Any, *, explore: bool = False, n_samples: int = 256, seed: int = 0
) -> TargetPolicy:
    """Wrap a ``TagScorer`` as a target policy (greedy by default).

    Typed ``Any`` to keep this module independent of inference; ``round.context``
    must be the ``ContentFeatures`` the logged decision was made for.
    """
    rng = np.random.default_rng(seed)

    def policy(round_: LoggedRound) -> Mapping[str, float]:
        probs: Mapping[str, float] = scorer.inclusion_probabilities(
            round_.context,
            list(round_.candidates) or None,
            round_.k,
            rng,
            explore=explore,
            n_samples=n_samples,
        )
        return probs

    return policy
