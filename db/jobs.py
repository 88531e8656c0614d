"""Queries on jobs, their logs and failed operations."""

from __future__ import annotations

from typing import Any

import asyncpg

from db.sql import changed_one_row, fetch_page, insert_sql
from t2m import job_status as statuses

JOB_COLUMNS = (
    "id, owner_id, type, status, progress, current_stage, parameters, script_key,"
    " storyboard_key, storyboard_summary, result, error, output_file_id, idempotency_key,"
    " webhook_url, render_seconds, created_at, started_at, completed_at, updated_at"
)
FINISHED = statuses.FINISHED


async def insert_job(conn: asyncpg.Connection, **fields: Any) -> asyncpg.Record | None:
    """Insert a job; None when the owner already used this idempotency key."""
    sql, args = insert_sql("jobs", fields)
    return await conn.fetchrow(
        f"{sql} ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL"
        f" DO NOTHING RETURNING {JOB_COLUMNS}",
        *args,
    )


async def job_by_idempotency_key(
    conn: asyncpg.Connection, owner_id: str, key: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE owner_id = $1 AND idempotency_key = $2",
        owner_id,
        key,
    )


async def job_by_id(conn: asyncpg.Connection, job_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND deleted_at IS NULL", job_id
    )


async def visible_job(
    conn: asyncpg.Connection, job_id: str, *, viewer_id: str, is_admin: bool
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {JOB_COLUMNS} FROM jobs"
        " WHERE id = $1 AND deleted_at IS NULL AND ($3 OR owner_id = $2)",
        job_id,
        viewer_id,
        is_admin,
    )


async def list_jobs(
    conn: asyncpg.Connection,
    *,
    owner_id: str | None,
    status: str | None,
    job_type: str | None,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    return await fetch_page(
        conn,
        select=f"SELECT {JOB_COLUMNS} FROM jobs",
        count_from="FROM jobs",
        where="deleted_at IS NULL AND ($1::text IS NULL OR owner_id = $1)"
        " AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR type = $3)",
        args=(owner_id, status, job_type),
        order_by="created_at DESC, id DESC",
        limit=limit,
        offset=offset,
    )


async def start_stage(conn: asyncpg.Connection, job_id: str, stage: str, progress: int) -> bool:
    """Move a live job into ``stage``; False when it is finished (skip the work)."""
    return await changed_one_row(
        conn,
        """
        UPDATE jobs SET status = 'processing', current_stage = $2,
            progress = greatest(progress, $3), started_at = coalesce(started_at, now()),
            updated_at = now()
        WHERE id = $1 AND status IN ('queued', 'processing') AND deleted_at IS NULL
        """,
        job_id,
        stage,
        progress,
    )


async def advance_stage(
    conn: asyncpg.Connection, job_id: str, from_stage: str, to_stage: str
) -> bool:
    """Move a processing job from ``from_stage`` to ``to_stage``; True for the
    one caller that moved it (the others saw it moved already)."""
    return await changed_one_row(
        conn,
        "UPDATE jobs SET current_stage = $3, updated_at = now()"
        " WHERE id = $1 AND status = 'processing' AND current_stage = $2",
        job_id,
        from_stage,
        to_stage,
    )


async def set_progress(conn: asyncpg.Connection, job_id: str, progress: int) -> None:
    # greatest(): progress never goes backwards, whatever order updates land in.
    await conn.execute(
        "UPDATE jobs SET progress = greatest(progress, $2), updated_at = now()"
        " WHERE id = $1 AND status = 'processing'",
        job_id,
        progress,
    )


async def add_render_seconds(conn: asyncpg.Connection, job_id: str, seconds: float) -> None:
    """Add rendering time to the job's ``render_seconds`` (a segmented render
    adds each piece's as it is made, from any worker, then the join's)."""
    await conn.execute(
        "UPDATE jobs SET render_seconds = coalesce(render_seconds, 0) + $2 WHERE id = $1",
        job_id,
        seconds,
    )


async def count_logged_keys(conn: asyncpg.Connection, job_id: str, keys: list[str]) -> int:
    """How many of ``keys`` the job's log names (``details.key``): the pieces of
    a segmented render logged as rendered or reused."""
    return int(
        await conn.fetchval(
            "SELECT count(DISTINCT details->>'key') FROM job_logs"
            " WHERE job_id = $1 AND details->>'key' = ANY($2::text[])",
            job_id,
            keys,
        )
    )


async def live_job_ids(conn: asyncpg.Connection) -> list[str]:
    """Ids of the jobs still owed work (queued or processing)."""
    rows = await conn.fetch("SELECT id FROM jobs WHERE status IN ('queued', 'processing')")
    return [str(r["id"]) for r in rows]


async def update_job(conn: asyncpg.Connection, job_id: str, **fields: Any) -> None:
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(fields, start=2))
    await conn.execute(
        f"UPDATE jobs SET {assignments}, updated_at = now() WHERE id = $1",
        job_id,
        *fields.values(),
    )


async def complete_job(conn: asyncpg.Connection, job_id: str, result: dict[str, Any]) -> bool:
    return await changed_one_row(
        conn,
        """
        UPDATE jobs SET status = 'completed', progress = 100, current_stage = 'completed',
            result = $2, error = NULL, completed_at = now(), updated_at = now()
        WHERE id = $1 AND status = 'processing'
        """,
        job_id,
        result,
    )


async def fail_job(conn: asyncpg.Connection, job_id: str, error: str) -> bool:
    return await changed_one_row(
        conn,
        """
        UPDATE jobs SET status = 'failed', error = $2, completed_at = now(), updated_at = now()
        WHERE id = $1 AND status IN ('queued', 'processing')
        """,
        job_id,
        error,
    )


async def cancel_job(conn: asyncpg.Connection, job_id: str) -> bool:
    return await changed_one_row(
        conn,
        """
        UPDATE jobs SET status = 'cancelled', completed_at = now(), updated_at = now()
        WHERE id = $1 AND status IN ('queued', 'processing')
        """,
        job_id,
    )


async def job_status(conn: asyncpg.Connection, job_id: str) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT status FROM jobs WHERE id = $1 AND deleted_at IS NULL", job_id
    )
    return value


async def soft_delete_job(conn: asyncpg.Connection, job_id: str) -> None:
    await conn.execute(
        "UPDATE jobs SET deleted_at = now(), updated_at = now() WHERE id = $1", job_id
    )


async def add_log(
    conn: asyncpg.Connection,
    job_id: str,
    level: str,
    message: str,
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO job_logs (job_id, level, message, details) VALUES ($1, $2, $3, $4)",
        job_id,
        level,
        message,
        details,
    )


async def job_logs(
    conn: asyncpg.Connection, job_id: str, *, level: str | None, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    return await fetch_page(
        conn,
        select="SELECT ts, level, message, details FROM job_logs",
        count_from="FROM job_logs",
        where="job_id = $1 AND ($2::text IS NULL OR level = $2)",
        args=(job_id, level),
        order_by="id",
        limit=limit,
        offset=offset,
    )


async def record_failed_operation(
    conn: asyncpg.Connection,
    *,
    stage: str,
    error: str,
    permanent: bool,
    attempts: int,
    job_id: str | None = None,
    file_id: str | None = None,
) -> None:
    await conn.execute(
        """
        INSERT INTO failed_operations (stage, job_id, file_id, error, permanent, attempts)
        VALUES ($1, $2, $3, $4, $5, $6)
        """,
        stage,
        job_id,
        file_id,
        error,
        permanent,
        attempts,
    )


async def storyboard_stats(conn: asyncpg.Connection) -> dict[str, Any]:
    row = await conn.fetchrow(
        """
        SELECT count(*) FILTER (WHERE storyboard_summary IS NOT NULL) AS storyboards,
               count(*) AS jobs,
               count(*) FILTER (WHERE status = 'completed') AS completed,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               avg((storyboard_summary->>'scenes')::float) AS mean_scenes,
               avg((storyboard_summary->>'duration_s')::float) AS mean_duration
        FROM jobs WHERE deleted_at IS NULL
        """
    )
    methods = await conn.fetch(
        """
        SELECT storyboard_summary->>'method' AS method, count(*) AS n FROM jobs
        WHERE storyboard_summary IS NOT NULL AND deleted_at IS NULL GROUP BY 1
        """
    )
    assert row is not None
    finished = row["completed"] + row["failed"]
    return {
        "total_storyboards": row["storyboards"],
        "total_jobs": row["jobs"],
        "by_generation_method": {r["method"] or "unknown": r["n"] for r in methods},
        "success_rate": round(row["completed"] / finished, 4) if finished else None,
        "failure_rate": round(row["failed"] / finished, 4) if finished else None,
        "mean_scenes": round(row["mean_scenes"], 2) if row["mean_scenes"] is not None else None,
        "mean_duration_s": round(row["mean_duration"], 2)
        if row["mean_duration"] is not None
        else None,
    }


async def merge_result(conn: asyncpg.Connection, job_id: str, extra: dict[str, Any]) -> None:
    """Add keys to a job's result (work that follows completion, e.g. HLS)."""
    await conn.execute(
        "UPDATE jobs SET result = coalesce(result, '{}'::jsonb) || $2::jsonb,"
        " updated_at = now() WHERE id = $1",
        job_id,
        extra,
    )
