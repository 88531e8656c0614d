"""Aggregates behind the report endpoints."""

from __future__ import annotations

from typing import Any

import asyncpg


def _round(value: Any, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


async def video_stats(conn: asyncpg.Connection, owner_id: str | None) -> dict[str, Any]:
    """Generated videos: jobs by status, durations, render times, engagement."""
    by_status = await conn.fetch(
        """
        SELECT status, count(*) AS n FROM jobs
        WHERE deleted_at IS NULL AND ($1::text IS NULL OR owner_id = $1) GROUP BY status
        """,
        owner_id,
    )
    row = await conn.fetchrow(
        """
        SELECT count(*) AS videos,
               sum((result->>'duration')::float) AS total_duration,
               avg((result->>'duration')::float) AS mean_duration,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY render_seconds) AS render_p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY render_seconds) AS render_p95,
               max(render_seconds) AS render_max
        FROM jobs
        WHERE status = 'completed' AND deleted_at IS NULL AND ($1::text IS NULL OR owner_id = $1)
        """,
        owner_id,
    )
    engagement = await conn.fetch(
        """
        SELECT e.event_type, count(*) AS n FROM feedback_events e
        JOIN files f ON f.id = e.content_id
        WHERE f.source = 'generated' AND ($1::text IS NULL OR f.owner_id = $1)
          AND e.event_type IN ('view', 'like', 'share', 'dislike', 'skip')
        GROUP BY e.event_type
        """,
        owner_id,
    )
    assert row is not None
    counts = {r["event_type"]: r["n"] for r in engagement}
    return {
        "jobs_by_status": {r["status"]: r["n"] for r in by_status},
        "videos": row["videos"],
        "total_duration_s": _round(row["total_duration"]) or 0.0,
        "mean_duration_s": _round(row["mean_duration"]),
        "render_seconds": {
            "p50": _round(row["render_p50"]),
            "p95": _round(row["render_p95"]),
            "max": _round(row["render_max"]),
        },
        "views": counts.get("view", 0),
        "likes": counts.get("like", 0),
        "shares": counts.get("share", 0),
        "dislikes": counts.get("dislike", 0),
        "skips": counts.get("skip", 0),
    }


async def streaming_performance(
    conn: asyncpg.Connection, owner_id: str | None, hours: float
) -> dict[str, Any]:
    """Stream responses of the last ``hours``, by quality."""
    rows = await conn.fetch(
        """
        SELECT s.quality, count(*) AS sessions, sum(s.bytes_sent) AS bytes,
               count(*) FILTER (WHERE s.completed) AS completed,
               avg(s.duration_ms) AS mean_ms,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY s.duration_ms) AS p95_ms,
               avg(s.bytes_sent / greatest(s.duration_ms, 0.001) * 1000) AS mean_bps,
               percentile_cont(0.95) WITHIN GROUP (
                   ORDER BY s.bytes_sent / greatest(s.duration_ms, 0.001) * 1000) AS p95_bps
        FROM stream_sessions s JOIN files f ON f.id = s.file_id
        WHERE s.started_at > now() - make_interval(secs => $2)
          AND ($1::text IS NULL OR f.owner_id = $1)
        GROUP BY s.quality ORDER BY s.quality
        """,
        owner_id,
        hours * 3600,
    )
    by_quality = {
        r["quality"]: {
            "sessions": r["sessions"],
            "completed": r["completed"],
            "bytes_served": int(r["bytes"] or 0),
            "mean_duration_ms": _round(r["mean_ms"], 2),
            "p95_duration_ms": _round(r["p95_ms"], 2),
            "mean_throughput_bps": _round(r["mean_bps"], 1),
            "p95_throughput_bps": _round(r["p95_bps"], 1),
        }
        for r in rows
    }
    return {
        "window_hours": hours,
        "sessions": sum(q["sessions"] for q in by_quality.values()),
        "bytes_served": sum(q["bytes_served"] for q in by_quality.values()),
        "by_quality": by_quality,
    }
