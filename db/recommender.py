"""Queries on the tag vocabulary, logged recommendations, feedback and model versions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from db.sql import insert_sql

#: How long feedback waits for the batched decision row it names.
DECISION_WAIT_S = 30.0


async def add_user_tags(
    conn: asyncpg.Connection, owner_id: str, tags: Sequence[str], *, accepted: bool = False
) -> None:
    """Grow the owner's private vocabulary (one more use per tag); a global tag among
    them counts one more use too (counts only: no tag text crosses users)."""
    names = list(dict.fromkeys(t for t in tags if t))
    if not names:
        return
    await conn.execute(
        """
        INSERT INTO user_tags (owner_id, tag, uses, accepts)
        SELECT $1, t, 1, $3::int FROM unnest($2::text[]) AS t
        ON CONFLICT (owner_id, tag) DO UPDATE SET uses = user_tags.uses + 1,
            accepts = user_tags.accepts + $3::int
        """,
        owner_id,
        names,
        int(accepted),
    )
    await conn.execute(
        "UPDATE tags SET uses = uses + 1, accepts = accepts + $2::int WHERE tag = ANY($1::text[])",
        names,
        int(accepted),
    )


async def record_tag_rejects(conn: asyncpg.Connection, owner_id: str, tags: Sequence[str]) -> None:
    await conn.execute(
        "UPDATE user_tags SET rejects = rejects + 1 WHERE owner_id = $1 AND tag = ANY($2::text[])",
        owner_id,
        list(tags),
    )
    await conn.execute(
        "UPDATE tags SET rejects = rejects + 1 WHERE tag = ANY($1::text[])", list(tags)
    )


async def tag_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """The global (administrator-curated) vocabulary with its use counts."""
    rows = await conn.fetch("SELECT tag, uses + accepts AS n FROM tags ORDER BY tag")
    return {r["tag"]: int(r["n"]) for r in rows}


async def user_tag_counts(conn: asyncpg.Connection, owner_id: str) -> dict[str, int]:
    """One user's private vocabulary with its use counts."""
    rows = await conn.fetch(
        "SELECT tag, uses + accepts AS n FROM user_tags WHERE owner_id = $1 ORDER BY tag",
        owner_id,
    )
    return {r["tag"]: int(r["n"]) for r in rows}


async def all_tag_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Every tag any vocabulary holds, with summed counts: the model's actions (the
    updater only; nothing built from this is ever shown to a user)."""
    rows = await conn.fetch(
        """
        SELECT tag, sum(n)::bigint AS n FROM (
            SELECT tag, uses + accepts AS n FROM tags
            UNION ALL SELECT tag, uses + accepts FROM user_tags
        ) AS u GROUP BY tag ORDER BY tag
        """
    )
    return {r["tag"]: int(r["n"]) for r in rows}


async def global_vocabulary(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT tag, source, uses, accepts, rejects, added_by, created_at FROM tags ORDER BY tag"
    )


async def curate_tags(
    conn: asyncpg.Connection, tags: Sequence[str], *, source: str, admin_id: str
) -> list[str]:
    """Add tags to the global vocabulary (``curated`` or ``promoted``); returns the new ones.

    A promoted tag starts with the uses it has across users' vocabularies (a count).
    """
    rows = await conn.fetch(
        """
        INSERT INTO tags (tag, source, uses, added_by)
        SELECT t, $2, coalesce((SELECT sum(uses) FROM user_tags u WHERE u.tag = t), 0), $3
        FROM unnest($1::text[]) AS t
        ON CONFLICT (tag) DO NOTHING
        RETURNING tag
        """,
        list(dict.fromkeys(tags)),
        source,
        admin_id,
    )
    return [r["tag"] for r in rows]


async def remove_global_tag(conn: asyncpg.Connection, tag: str) -> bool:
    """Take a tag out of the global vocabulary (users' private copies stay theirs)."""
    return await conn.fetchval("DELETE FROM tags WHERE tag = $1 RETURNING true", tag) is not None


async def promotion_candidates(
    conn: asyncpg.Connection, *, min_users: int, limit: int
) -> list[asyncpg.Record]:
    """Tags several users chose independently and the global vocabulary lacks: what an
    administrator may promote. Only tags with at least ``min_users`` distinct users are
    listed, so one user's private tag is not shown even to administrators."""
    return await conn.fetch(
        """
        SELECT u.tag, count(*) AS users, sum(u.uses) AS uses
        FROM user_tags u
        WHERE NOT EXISTS (SELECT 1 FROM tags g WHERE g.tag = u.tag)
        GROUP BY u.tag HAVING count(*) >= $1
        ORDER BY count(*) DESC, sum(u.uses) DESC, u.tag
        LIMIT $2
        """,
        min_users,
        limit,
    )


async def insert_recommendation(conn: asyncpg.Connection, **fields: Any) -> None:
    sql, args = insert_sql("recommendations", fields)
    await conn.execute(sql, *args)


_DECISION_COLUMNS = (
    "id", "content_id", "user_id", "model_version", "tags", "candidates", "k", "scores",
    "propensities", "explored",
)  # fmt: skip


async def insert_recommendations(conn: asyncpg.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """A batch of logged decisions in one statement. A decision whose content was
    deleted meanwhile is skipped (its feedback went with the content)."""
    if not rows:
        return
    await conn.execute(
        """
        INSERT INTO recommendations
            (id, content_id, user_id, model_version, tags, candidates, k, scores,
             propensities, explored)
        SELECT d.id, d.content_id, d.user_id, d.model_version, d.tags, d.candidates, d.k,
               d.scores, d.propensities, d.explored
        FROM jsonb_to_recordset($1::jsonb) AS d(
            id text, content_id text, user_id text, model_version int, tags text[],
            candidates text[], k int, scores float8[], propensities float8[], explored bool)
        WHERE EXISTS (SELECT 1 FROM files f WHERE f.id = d.content_id)
        ON CONFLICT (id) DO NOTHING
        """,
        [{c: r[c] for c in _DECISION_COLUMNS} for r in rows],  # the pool's jsonb codec
    )


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
    updater never trains on the same events. An event naming a decision whose row
    is not written yet (the API batches them) waits for it, up to
    ``DECISION_WAIT_S``; then it trains without the decision.
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
          AND (e.recommendation_id IS NULL OR r.id IS NOT NULL
               OR e.created_at < now() - make_interval(secs => $2))
        ORDER BY e.id
        LIMIT $1
        FOR UPDATE OF e SKIP LOCKED
        """,
        limit,
        DECISION_WAIT_S,
    )


async def feedback_waiting_for_decisions(conn: asyncpg.Connection) -> int:
    """Unprocessed events whose decision row is not written yet (see the claim)."""
    value: int = await conn.fetchval(
        """
        SELECT count(*) FROM feedback_events e
        WHERE e.processed_at IS NULL AND e.recommendation_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM recommendations r WHERE r.id = e.recommendation_id)
        """
    )
    return value


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


async def claim_tagged_files_to_learn(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Files with owner tags the updater has not learned yet (locked for the caller's
    transaction, SKIP LOCKED: a second updater takes others)."""
    return await conn.fetch(
        """
        SELECT id, title, description, file_type, metadata, tags
        FROM files
        WHERE tags_learned_at IS NULL AND tags <> '{}' AND deleted_at IS NULL
        ORDER BY created_at
        LIMIT $1
        FOR UPDATE SKIP LOCKED
        """,
        limit,
    )


async def mark_tags_learned(conn: asyncpg.Connection, file_ids: Sequence[str]) -> None:
    await conn.execute(
        "UPDATE files SET tags_learned_at = now() WHERE id = ANY($1::text[])", list(file_ids)
    )
