"""The figures behind GET /metrics: the recommender's learning and system counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from db import recommender as rec_rows


async def recommender_metrics(conn: asyncpg.Connection) -> dict[str, Any]:
    summary = await rec_rows.feedback_summary(conn)
    model = await rec_rows.latest_model(conn)
    counts = await conn.fetchrow(
        """
        SELECT (SELECT count(*) FROM files WHERE deleted_at IS NULL) AS contents,
               (SELECT count(*) FROM users) AS users,
               (SELECT count(*) FROM jobs WHERE deleted_at IS NULL) AS jobs,
               (SELECT count(*) FROM tags) AS tags
        """
    )
    assert counts is not None
    agent: dict[str, Any] = {
        "model_version": 0,
        "model_age_s": None,
        "last_update": None,
        "training_loss": None,
        "events_trained": 0,
        "updater_events_per_s": None,
        "off_policy": None,
    }
    if model is not None:
        agent.update(
            model_version=model["version"],
            model_age_s=round((datetime.now(UTC) - model["created_at"]).total_seconds(), 1),
            last_update=model["created_at"],
            training_loss=model["loss"],
            events_trained=model["total_events"],
            updater_events_per_s=round(model["events_trained"] / model["seconds"], 1)
            if model["seconds"]
            else None,
            off_policy=(model["metrics"] or {}).get("off_policy"),
        )
    return {
        "agent": {**agent, **summary},
        "system": {
            "contents": counts["contents"],
            "users": counts["users"],
            "jobs": counts["jobs"],
            "tags": counts["tags"],
        },
    }
