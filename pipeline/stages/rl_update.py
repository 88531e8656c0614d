"""Turn stored feedback into training events, and evaluate a policy off-policy.

Pure functions over database rows (mappings): the ``rl_update`` actor loads
rows, calls these, and trains the agent.  See :mod:`recommender.rewards` for
the reward mapping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from recommender.content import file_content_features
from recommender.evaluation import LoggedRound, evaluate_policies, scorer_policy
from recommender.features import ContentFeatures, FeatureConfig
from recommender.inference import TagScorer
from recommender.rewards import (
    FeedbackEvent,
    LoggedDecision,
    attribute_rewards,
    feedback_events,
)


@dataclass
class TrainingBatch:
    event_ids: list[int] = field(default_factory=list)
    event_rewards: list[float] = field(default_factory=list)  # per stored event, summed
    events: list[FeedbackEvent] = field(default_factory=list)  # per tag, for the agent
    new_tags: list[str] = field(default_factory=list)


def training_batch(rows: Sequence[Mapping[str, Any]], config: FeatureConfig) -> TrainingBatch:
    batch = TrainingBatch()
    contexts: dict[str, ContentFeatures] = {}
    for row in rows:
        context = contexts.get(row["content_id"])
        if context is None:
            context = contexts[row["content_id"]] = file_content_features(row, config)
        decision = None
        if row["shown_tags"] is not None:
            decision = LoggedDecision(
                tags=tuple(row["shown_tags"]),
                propensities=dict(zip(row["shown_tags"], row["propensities"], strict=True)),
            )
        duration = (row["metadata"] or {}).get("duration")
        rewards: dict[str, tuple[float, float]] = {}
        if row["event_type"] in ("tag_accept", "tag_reject"):
            for tag in row["event_tags"]:
                rewards.update(attribute_rewards(row["event_type"], tag=tag, decision=decision))
            if row["event_type"] == "tag_accept":
                batch.new_tags.extend(row["event_tags"])
        else:
            rewards = attribute_rewards(
                row["event_type"],
                decision=decision,
                current_tags=list(row["content_tags"]),
                watch_time_ms=row["watch_time_ms"],
                duration_s=duration,
            )
        batch.event_ids.append(row["id"])
        batch.event_rewards.append(sum(r for r, _ in rewards.values()))
        batch.events.extend(feedback_events(context, rewards))
    return batch


def logged_rounds(rows: Sequence[Mapping[str, Any]], config: FeatureConfig) -> list[LoggedRound]:
    """Decisions answered with tag feedback: accepted tags earn 1, the rest 0."""
    rounds = []
    for row in rows:
        if not row["candidates"] or not row["tags"]:
            continue
        accepted = set(row["accepted"])
        rounds.append(
            LoggedRound(
                context=file_content_features(row, config),
                candidates=tuple(row["candidates"]),
                shown=tuple(row["tags"]),
                propensities=tuple(max(p, 1e-6) for p in row["propensities"]),
                rewards=tuple(1.0 if t in accepted else 0.0 for t in row["tags"]),
                k=row["k"],
            )
        )
    return rounds


def off_policy_report(scorer: TagScorer, rounds: Sequence[LoggedRound]) -> dict[str, Any] | None:
    """IPS and SNIPS of the new (greedy) policy next to the logged and uniform ones."""
    if not rounds:
        return None
    report = evaluate_policies(rounds, {"current": scorer_policy(scorer, n_samples=64)}, clip=50.0)
    return {
        "rounds": len(rounds),
        "logged_policy_reward": report["logged"],
        "uniform_random": report["uniform"],
        "current_policy": report["current"],
    }
