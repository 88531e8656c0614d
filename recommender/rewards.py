"""Reward mapping from viewer feedback to per-tag rewards (pure functions, numpy-free).

Vocabulary used across the recommender
    *feedback event* (``FeedbackEvent``): one reward for one (content, tag) pair,
    with the probability that the logging policy showed that tag. It is the unit
    the updater trains on, the unit the simulator counts with ``--events`` and
    the unit of the throughput benchmark. One viewer action can expand into
    several feedback events (a ``like`` rewards every current tag of the
    content); one recommendation decision showing k tags yields k of them.

Mapping (rewards are clipped to [-1, 1])
    ======================  ===============================================  ==========
    viewer action           reward                                           goes to
    ======================  ===============================================  ==========
    ``tag_accept``          +1.0                                             that tag
    ``tag_reject``          ``reject_reward`` (default 0.0; e.g. -0.5)       that tag
    ``view``                0.5 * clip(watch_time_ms / duration_ms, 0, 1);   attributed
                            0.25 when there is no duration (image, document)
    ``like``                +1.0                                             attributed
    ``share``               +1.0                                             attributed
    ``dislike``             -1.0                                             attributed
    ``skip``                -0.5 * (1 - watch fraction) (-0.5 if unknown)    attributed
    ======================  ===============================================  ==========

"attributed" engagement rewards go to the tags of the logged decision the
viewer saw, or else to the content's current tags, multiplied by
``ENGAGEMENT_ATTRIBUTION`` (0.25): engagement says much less about whether a
tag fits than an explicit accept/reject does, so it must not drown them.

Propensities: a tag from a logged decision carries that decision's
propensity; a tag the user chose themselves (not recommended) carries 1.0 —
its reward was observed regardless of the policy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from recommender.features import normalize_tag

if TYPE_CHECKING:
    from recommender.features import ContentFeatures

__all__ = [
    "ENGAGEMENT_ATTRIBUTION",
    "EventType",
    "FeedbackEvent",
    "LoggedDecision",
    "attribute_rewards",
    "engagement_reward",
    "feedback_events",
    "tag_feedback_reward",
    "watch_fraction",
]

ENGAGEMENT_ATTRIBUTION = 0.25
ACCEPT_REWARD = 1.0
DEFAULT_REJECT_REWARD = 0.0
VIEW_WEIGHT = 0.5
VIEW_WITHOUT_DURATION = 0.25
LIKE_REWARD = 1.0
SHARE_REWARD = 1.0
DISLIKE_REWARD = -1.0
SKIP_WEIGHT = -0.5


class EventType(StrEnum):
    VIEW = "view"
    LIKE = "like"
    SHARE = "share"
    DISLIKE = "dislike"
    SKIP = "skip"
    TAG_ACCEPT = "tag_accept"
    TAG_REJECT = "tag_reject"


TAG_EVENTS = frozenset({EventType.TAG_ACCEPT, EventType.TAG_REJECT})


@dataclass(frozen=True, eq=False)
class FeedbackEvent:
    """One per-tag reward: the training unit of ``Agent.update``."""

    content: ContentFeatures
    tag: str
    reward: float
    propensity: float = 1.0


@dataclass(frozen=True)
class LoggedDecision:
    """What the API logged when it showed recommendations: tags in rank order and
    the probability each one had of being shown (``Decision.propensities``)."""

    tags: tuple[str, ...]
    propensities: Mapping[str, float]


def _clip(value: float, lo: float = -1.0, hi: float = 1.0) -> float:
    return max(lo, min(hi, value))


def watch_fraction(watch_time_ms: float | None, duration_s: float | None) -> float | None:
    """watch_time / duration clipped to [0, 1]; None when either is unknown or duration <= 0."""
    if watch_time_ms is None or duration_s is None:
        return None
    if not math.isfinite(duration_s) or duration_s <= 0 or not math.isfinite(watch_time_ms):
        return None
    return _clip(watch_time_ms / (duration_s * 1000.0), 0.0, 1.0)


def engagement_reward(
    event_type: EventType | str,
    watch_time_ms: float | None = None,
    duration_s: float | None = None,
) -> float:
    """Content-level reward of an engagement event (before attribution to tags)."""
    kind = EventType(event_type)
    fraction = watch_fraction(watch_time_ms, duration_s)
    if kind is EventType.VIEW:
        return VIEW_WITHOUT_DURATION if fraction is None else VIEW_WEIGHT * fraction
    if kind is EventType.LIKE:
        return LIKE_REWARD
    if kind is EventType.SHARE:
        return SHARE_REWARD
    if kind is EventType.DISLIKE:
        return DISLIKE_REWARD
    if kind is EventType.SKIP:
        return SKIP_WEIGHT * (1.0 if fraction is None else 1.0 - fraction)
    raise ValueError(f"{kind.value} is a tag event, use tag_feedback_reward")


def tag_feedback_reward(
    event_type: EventType | str, reject_reward: float = DEFAULT_REJECT_REWARD
) -> float:
    """Reward of an explicit tag_accept / tag_reject for that tag."""
    kind = EventType(event_type)
    if kind is EventType.TAG_ACCEPT:
        return ACCEPT_REWARD
    if kind is EventType.TAG_REJECT:
        return _clip(reject_reward)
    raise ValueError(f"{kind.value} is not a tag event")


def attribute_rewards(
    event_type: EventType | str,
    *,
    tag: str | None = None,
    decision: LoggedDecision | None = None,
    current_tags: Sequence[str] = (),
    watch_time_ms: float | None = None,
    duration_s: float | None = None,
    reject_reward: float = DEFAULT_REJECT_REWARD,
) -> dict[str, tuple[float, float]]:
    """Per-tag ``(reward, propensity)`` for one viewer action.

    * tag_accept / tag_reject: only ``tag`` (required); propensity from ``decision``
      when the tag was shown by it, else 1.0 (the user picked it themselves).
    * engagement: the decision's shown tags if a decision is given, else
      ``current_tags``; reward = engagement_reward * ENGAGEMENT_ATTRIBUTION.
    """
    kind = EventType(event_type)
    shown = dict(decision.propensities) if decision else {}
    shown = {normalize_tag(t): p for t, p in shown.items()}
    if kind in TAG_EVENTS:
        if not tag or not normalize_tag(tag):
            raise ValueError(f"{kind.value} needs a tag")
        name = normalize_tag(tag)
        return {name: (tag_feedback_reward(kind, reject_reward), shown.get(name, 1.0))}
    value = _clip(engagement_reward(kind, watch_time_ms, duration_s) * ENGAGEMENT_ATTRIBUTION)
    targets = list(decision.tags) if decision else list(current_tags)
    out: dict[str, tuple[float, float]] = {}
    for t in targets:
        name = normalize_tag(t)
        if name:
            out[name] = (value, shown.get(name, 1.0))
    return out


def feedback_events(
    content: ContentFeatures, rewards: Mapping[str, tuple[float, float]]
) -> list[FeedbackEvent]:
    """Turn ``attribute_rewards`` output into training events for ``Agent.update``."""
    return [
        FeedbackEvent(content=content, tag=t, reward=r, propensity=p)
        for t, (r, p) in rewards.items()
    ]
