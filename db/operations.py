"""Rows of the operations views: maintenance runs, failed operations, reaper
and purge selections."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from db.sql import changed_one_row, fetch_page


async def insert_maintenance_run(
    conn: asyncpg.Connection,
    *,
    job: str,
    started_at: datetime,
    duration_s: float,
    outcome: str,
    counts: dict[str, Any],
    error: str | None,
    slot: int | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO maintenance_runs (job, started_at, duration_s, outcome, counts, error, slot)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        job,
        started_at,
        duration_s,
        outcome,
        counts,
        error,
        slot,
    )


async def list_maintenance_runs(
    conn: asyncpg.Connection, *, job: str | None, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    return await fetch_page(
        conn,
        select="SELECT id, job, started_at, duration_s, outcome, counts, error"
        " FROM maintenance_runs",
        count_from="FROM maintenance_runs",
        where="($1::text IS NULL OR job = $1)",
        args=(job,),
        order_by="started_at DESC, id DESC",
        limit=limit,
        offset=offset,
    )


async def list_failed_operations(
    conn: asyncpg.Connection, *, stage: str | None, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    return await fetch_page(
        conn,
        select="SELECT id, stage, job_id, file_id, error, attempts, permanent, failed_at,"
        " retried_at FROM failed_operations",
        count_from="FROM failed_operations",
        where="($1::text IS NULL OR stage = $1)",
        args=(stage,),
        order_by="failed_at DESC, id DESC",
        limit=limit,
        offset=offset,
    )


async def failed_operation(conn: asyncpg.Connection, op_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, stage, job_id, file_id, error, retried_at FROM failed_operations"
        " WHERE id = $1 FOR UPDATE",
        op_id,
    )


async def mark_retried(conn: asyncpg.Connection, op_id: int) -> None:
    await conn.execute("UPDATE failed_operations SET retried_at = now() WHERE id = $1", op_id)


async def reopen_job(conn: asyncpg.Connection, job_id: str, stage: str) -> bool:
    """Put a failed job back in processing at ``stage`` so its actor takes it."""
    return await changed_one_row(
        conn,
        "UPDATE jobs SET status = 'processing', current_stage = $2, error = NULL,"
        " completed_at = NULL, updated_at = now()"
        " WHERE id = $1 AND status = 'failed' AND deleted_at IS NULL",
        job_id,
        stage,
    )


async def stuck_jobs(
    conn: asyncpg.Connection, *, processing_after_s: float, queued_after_s: float, limit: int
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """
            SELECT id, status, current_stage, requeue_count FROM jobs
            WHERE deleted_at IS NULL AND (
                (status = 'processing' AND updated_at < now() - make_interval(secs => $1))
                OR (status = 'queued' AND updated_at < now() - make_interval(secs => $2)))
            ORDER BY updated_at LIMIT $3 FOR UPDATE SKIP LOCKED
            """,
            processing_after_s,
            queued_after_s,
            limit,
        )
    )


async def count_requeue(conn: asyncpg.Connection, job_id: str) -> None:
    await conn.execute(
        "UPDATE jobs SET requeue_count = requeue_count + 1, updated_at = now() WHERE id = $1",
        job_id,
    )


async def old_job_logs(
    conn: asyncpg.Connection, *, cutoff: datetime, limit: int
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT id, job_id, ts, level, message, details FROM job_logs"
            " WHERE ts < $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
            cutoff,
            limit,
        )
    )


async def delete_job_logs(conn: asyncpg.Connection, ids: list[int]) -> int:
    status = await conn.execute("DELETE FROM job_logs WHERE id = ANY($1::bigint[])", ids)
    return int(status.split()[-1])


async def expired_deleted_files(
    conn: asyncpg.Connection, *, grace_s: float, limit: int
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT id, thumbnails FROM files"
            " WHERE deleted_at < now() - make_interval(secs => $1) ORDER BY deleted_at LIMIT $2",
            grace_s,
            limit,
        )
    )


async def delete_file_row(conn: asyncpg.Connection, file_id: str) -> None:
    await conn.execute("DELETE FROM files WHERE id = $1 AND deleted_at IS NOT NULL", file_id)


async def expired_blobs(
    conn: asyncpg.Connection, *, grace_s: float, limit: int
) -> list[asyncpg.Record]:
    # A row still naming the blob (a soft-deleted file inside its own grace)
    # keeps it: the foreign key would refuse the delete anyway.
    return list(
        await conn.fetch(
            """
            SELECT sha256, storage_key FROM blobs b
            WHERE ref_count = 0 AND unreferenced_since < now() - make_interval(secs => $1)
              AND NOT EXISTS (SELECT 1 FROM files f WHERE f.blob_sha256 = b.sha256)
            ORDER BY unreferenced_since LIMIT $2
            """,
            grace_s,
            limit,
        )
    )


async def delete_blob_row(conn: asyncpg.Connection, sha256: str) -> bool:
    # Re-checked: an upload may have taken a new reference meanwhile.
    return await changed_one_row(
        conn,
        "DELETE FROM blobs b WHERE sha256 = $1 AND ref_count = 0"
        " AND NOT EXISTS (SELECT 1 FROM files f WHERE f.blob_sha256 = b.sha256)",
        sha256,
    )
