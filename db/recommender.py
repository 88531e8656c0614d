"""Queries on the tag vocabulary, logged recommendations, feedback and model versions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from db.sql import insert_sql


async def add_tags(conn: asyncpg.Connection, tags: Sequence[str], *, source: str) -> None:
    """Grow the vocabulary; a tag seen again counts one more use."""
    if not tags:
        return
    await conn.execute(
        """
        INSERT INTO tags (tag, source, uses, accepts)
        SELECT t, $2, 1, CASE WHEN $2 = 'accepted' THEN 1 ELSE 0 END FROM unnest($1::text[]) AS t
        ON CONFLICT (tag) DO UPDATE SET uses = tags.uses + 1,
            accepts = tags.accepts + CASE WHEN $2 = 'accepted' THEN 1 ELSE 0 END
        """,
        list(dict.fromkeys(tags)),
        source,
    )


async def record_tag_rejects(conn: asyncpg.Connection, tags: Sequence[str]) -> None:
    await conn.execute(
        "UPDATE tags SET rejects = rejects + 1 WHERE tag = ANY($1::text[])", list(tags)
    )


async def tag_counts(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT tag, uses + accepts AS n FROM tags ORDER BY tag")
    return {r["tag"]: int(r["n"]) for r in rows}


async def insert_recommendation(conn: asyncpg.Connection, **fields: Any) -> None:
    sql, args = insert_sql("recommendations", fields)
    await conn.execute(sql, *args)


async def recommendation_for(
    conn: asyncpg.Connection, recommendation_id: str, content_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, tags, propensities FROM recommendations WHERE id = $1 AND content_id = $2",
        recommendation_id,
        content_id,
    )


async def insert_feedback(conn: asyncpg.Connection, **fields: Any) -> int:
    sql, args = insert_sql("feedback_events", fields)
    value: int = await conn.fetchval(f"{sql} RETURNING id", *args)
    return value


async def claim_unprocessed_feedback(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """The oldest unprocessed events with what training needs to know about them.

    Rows are locked for the caller's transaction (SKIP LOCKED), so a second
    updater never trains on the same events.
    """
    return await conn.fetch(
        """
        SELECT e.id, e.content_id, e.event_type, e.watch_time_ms, e.tags AS event_tags,
               f.title, f.description, f.file_type, f.tags AS content_tags, f.metadata,
               r.tags AS shown_tags, r.propensities
        FROM feedback_events e
        JOIN files f ON f.id = e.content_id
        LEFT JOIN recommendations r ON r.id = e.recommendation_id
        WHERE e.processed_at IS NULL
        ORDER BY e.id
        LIMIT $1
        FOR UPDATE OF e SKIP LOCKED
        """,
        limit,
    )


async def mark_processed(
    conn: asyncpg.Connection, event_ids: Sequence[int], rewards: Sequence[float]
) -> None:
    await conn.execute(
        """
        UPDATE feedback_events e SET processed_at = now(), reward = r.reward
        FROM unnest($1::bigint[], $2::float8[]) AS r(id, reward)
        WHERE e.id = r.id
        """,
        list(event_ids),
        list(rewards),
    )


async def latest_model(conn: asyncpg.Connection) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT version, checkpoint_key, scorer_key, events_trained, total_events, loss,"
        " seconds, metrics, created_at FROM model_versions ORDER BY version DESC LIMIT 1"
    )


async def latest_model_version(conn: asyncpg.Connection) -> int:
    value: int = await conn.fetchval("SELECT coalesce(max(version), 0) FROM model_versions")
    return value


async def insert_model_version(conn: asyncpg.Connection, **fields: Any) -> None:
    sql, args = insert_sql("model_versions", fields)
    await conn.execute(sql, *args)


async def recent_rounds(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Recent decisions with the per-tag rewards their tag feedback produced."""
    return await conn.fetch(
        """
        SELECT r.id, r.content_id, r.tags, r.candidates, r.k, r.propensities,
               f.title, f.description, f.file_type, f.metadata,
               coalesce(array_agg(e.tags[1]) FILTER (WHERE e.event_type = 'tag_accept'), '{}')
                   AS accepted
        FROM recommendations r
        JOIN files f ON f.id = r.content_id
        JOIN feedback_events e ON e.recommendation_id = r.id
            AND e.event_type IN ('tag_accept', 'tag_reject')
        GROUP BY r.id, f.id
        ORDER BY r.created_at DESC
        LIMIT $1
        """,
        limit,
    )


async def feedback_summary(conn: asyncpg.Connection) -> dict[str, Any]:
    by_type = await conn.fetch(
        "SELECT event_type, count(*) AS n FROM feedback_events GROUP BY event_type"
    )
    row = await conn.fetchrow(
        """
        SELECT coalesce(sum(reward), 0) AS total,
               (SELECT avg(reward) FROM (SELECT reward FROM feedback_events
                 WHERE reward IS NOT NULL ORDER BY id DESC LIMIT 1000) AS recent) AS rolling,
               count(*) FILTER (WHERE processed_at IS NULL) AS pending
        FROM feedback_events
        """
    )
    decisions = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(avg(explored::int), 0) AS explored FROM recommendations"
    )
    assert row is not None and decisions is not None
    return {
        "decisions": decisions["n"],
        "exploration_rate": round(float(decisions["explored"]), 4),
        "feedback_by_type": {r["event_type"]: r["n"] for r in by_type},
        "rewards_total": round(float(row["total"]), 4),
        "rewards_rolling_mean": None if row["rolling"] is None else round(float(row["rolling"]), 4),
        "pending_events": row["pending"],
    }
