"""Job throughput, stage durations and failures over a time window.

Stage durations come from the job log: each stage logs "Stage <name> started"
when it claims a job, so a stage lasts from its first start to the next
stage's first start (the last stage: to the job's completion).  Only jobs
updated within the window are read — through the ``jobs (status,
updated_at)`` index, then each job's log through ``job_logs (job_id, id)`` —
so the cost follows the window's traffic, not the table sizes.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from t2m.job_status import JobStatus

_STAGE_SPANS = """
WITH touched AS (
    SELECT id, status, completed_at FROM jobs
    WHERE status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')
      AND updated_at > now() - make_interval(secs => $1)
),
starts AS (
    SELECT l.job_id, l.details->>'step' AS stage, min(l.ts) AS started
    FROM touched t JOIN job_logs l ON l.job_id = t.id
    WHERE l.message LIKE 'Stage % started' AND l.details ? 'step'
    GROUP BY l.job_id, l.details->>'step'
),
spans AS (
    SELECT s.stage, s.started,
           coalesce(
               lead(s.started) OVER (PARTITION BY s.job_id ORDER BY s.started),
               CASE WHEN t.status = 'completed' THEN t.completed_at END
           ) AS ended
    FROM starts s JOIN touched t ON t.id = s.job_id
),
recent AS (
    SELECT stage, started, ended, extract(epoch FROM ended - started) AS seconds
    FROM spans
)
SELECT stage,
       count(*) FILTER (WHERE started > now() - make_interval(secs => $1)) AS started,
       count(*) FILTER (WHERE ended > now() - make_interval(secs => $1)) AS completed,
       avg(seconds) FILTER (WHERE ended > now() - make_interval(secs => $1)) AS mean_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds)
           FILTER (WHERE ended > now() - make_interval(secs => $1)) AS p50_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds)
           FILTER (WHERE ended > now() - make_interval(secs => $1)) AS p95_s,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY seconds)
           FILTER (WHERE ended > now() - make_interval(secs => $1)) AS p99_s,
       max(seconds) FILTER (WHERE ended > now() - make_interval(secs => $1)) AS max_s
FROM recent GROUP BY stage
"""


def _round(value: Any, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


async def stage_stats(conn: asyncpg.Connection, window_s: float) -> dict[str, dict[str, Any]]:
    """Per stage: starts and completions in the window, duration percentiles
    of the completions, and failures recorded in the window."""
    rows = await conn.fetch(_STAGE_SPANS, window_s)
    failures = await conn.fetch(
        """
        SELECT stage, count(*) AS failed, count(*) FILTER (WHERE permanent) AS permanent
        FROM failed_operations WHERE failed_at > now() - make_interval(secs => $1)
        GROUP BY stage
        """,
        window_s,
    )
    stages: dict[str, dict[str, Any]] = {}
    for row in rows:
        stages[row["stage"]] = {
            "started": row["started"],
            "completed": row["completed"],
            "failed": 0,
            "failed_permanently": 0,
            "duration_s": {
                "mean": _round(row["mean_s"]),
                "p50": _round(row["p50_s"]),
                "p95": _round(row["p95_s"]),
                "p99": _round(row["p99_s"]),
                "max": _round(row["max_s"]),
            },
        }
    for row in failures:
        entry = stages.setdefault(
            row["stage"],
            {
                "started": 0,
                "completed": 0,
                "duration_s": dict.fromkeys(("mean", "p50", "p95", "p99", "max")),
            },
        )
        entry["failed"] = row["failed"]
        entry["failed_permanently"] = row["permanent"]
    return stages


async def job_outcomes(conn: asyncpg.Connection, window_s: float) -> dict[str, int]:
    """Jobs now queued or processing, and jobs that ended within the window."""
    rows = await conn.fetch(
        """
        SELECT status, count(*) AS n FROM jobs
        WHERE status IN ('queued', 'processing')
           OR (status IN ('completed', 'failed', 'cancelled')
               AND updated_at > now() - make_interval(secs => $1)
               AND completed_at > now() - make_interval(secs => $1))
        GROUP BY status
        """,
        window_s,
    )
    counts: dict[str, int] = dict.fromkeys(JobStatus, 0)
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


async def recent_failures(
    conn: asyncpg.Connection, window_s: float, limit: int = 10
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        SELECT id, stage, job_id, file_id, error, attempts, permanent, failed_at
        FROM failed_operations WHERE failed_at > now() - make_interval(secs => $1)
        ORDER BY failed_at DESC, id DESC LIMIT $2
        """,
        window_s,
        limit,
    )
    return [dict(r) for r in rows]


async def mean_stage_seconds(conn: asyncpg.Connection, window_s: float) -> dict[str, float]:
    """Mean duration of each stage's completions in the window (for queue
    wait estimates)."""
    stats = await stage_stats(conn, window_s)
    return {
        stage: entry["duration_s"]["mean"]
        for stage, entry in stats.items()
        if entry["duration_s"]["mean"] is not None
    }
