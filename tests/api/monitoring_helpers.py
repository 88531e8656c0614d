"""Rows for the monitoring tests: a job that went through timed stages."""

from __future__ import annotations

import secrets

import asyncpg

from db import jobs as job_rows


async def job_with_stage_times(
    db: asyncpg.Pool, owner_id: str, offsets_s: dict[str, float], *, completed_after_s: float
) -> str:
    """A completed job whose stages started ``offsets_s`` seconds after a
    start a minute ago, and which completed ``completed_after_s`` after it."""
    job_id = "job_" + secrets.token_hex(6)
    async with db.acquire() as conn:
        await job_rows.insert_job(
            conn, id=job_id, owner_id=owner_id, output_file_id="file_" + secrets.token_hex(6)
        )
        start = await conn.fetchval("SELECT now() - interval '60 seconds'")
        for stage, offset in offsets_s.items():
            await conn.execute(
                "INSERT INTO job_logs (job_id, ts, level, message, details)"
                " VALUES ($1, $2::timestamptz + make_interval(secs => $3), 'INFO', $4, $5)",
                job_id,
                start,
                offset,
                f"Stage {stage} started",
                {"step": stage, "progress": 0},
            )
        await conn.execute(
            "UPDATE jobs SET status = 'completed', current_stage = 'completed',"
            " started_at = $2,"
            " completed_at = $2::timestamptz + make_interval(secs => $3), updated_at = now()"
            " WHERE id = $1",
            job_id,
            start,
            completed_after_s,
        )
    return job_id
