"""Webhook events recorded straight into the database, as a stage records them
but without its broker message (the sweep or the test sends it)."""

from __future__ import annotations

import asyncpg

from db import webhooks as webhook_rows


async def emit_progress(conn: asyncpg.Connection, owner_id: str, job_id: str, step: int) -> None:
    """A ``job.progress`` event of ``job_id`` at ``step`` %, in its own transaction."""
    async with conn.transaction():
        await webhook_rows.emit_event(
            conn,
            owner_id=owner_id,
            event="job.progress",
            data={"job_id": job_id, "progress": step},
            job_id=job_id,
            progress_step=step,
        )
