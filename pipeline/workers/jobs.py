"""What every video-stage actor does around its stage: claim, log, fail, hand on.

Each stage actor runs ``async with stage_run(job_id, stage, progress) as run``;
the run is ``None`` when the job was cancelled, finished or deleted (the
message is then dropped), so a redelivered or late message never redoes or
undoes settled work.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import dramatiq
from dramatiq.middleware import CurrentMessage

from db import jobs as job_rows
from db import webhooks as webhook_rows
from pipeline.workers import notify
from pipeline.workers.resources import (
    db_pool,
    invalidate_cache,
    invalidate_job_cache,
    job_events,
)
from t2m import job_events as live
from t2m import job_status as statuses
from t2m import webhook_events
from t2m.errors import T2MError
from t2m.job_status import JobStatus
from t2m.queues import COMPLETED_STAGE, VIDEO_STAGES

log = logging.getLogger(__name__)

STAGE_ORDER = (*VIDEO_STAGES, COMPLETED_STAGE)


@dataclass
class StageRun:
    job: asyncpg.Record
    stage: str
    pool: asyncpg.Pool
    # The last 10 % step this run announced: most progress updates cross
    # none and need no webhook work (the database guards across processes).
    announced_step: int = 0

    async def log(self, level: str, message: str, **details: Any) -> None:
        async with self.pool.acquire() as conn:
            await job_rows.add_log(
                conn, self.job["id"], level, message, {"step": self.stage, **details}
            )
        await job_events().publish_log(self.job["id"], level, message, self.stage)

    async def progress(self, value: int) -> None:
        step = webhook_events.progress_step(value)
        if step <= self.announced_step:
            async with self.pool.acquire() as conn:
                await job_rows.set_progress(conn, self.job["id"], value)
            await self._publish_progress(value)
            return
        self.announced_step = step
        async with self.pool.acquire() as conn, conn.transaction():
            await job_rows.set_progress(conn, self.job["id"], value)
            deliveries = await webhook_rows.emit_job_event(
                conn,
                self.job["id"],
                webhook_events.JOB_PROGRESS,
                public_base_url=notify.public_base_url(),
            )
        await notify.send_deliveries(deliveries)
        await self._publish_progress(value)

    async def _publish_progress(self, value: int) -> None:
        await job_events().publish(
            self.job["id"], live.PROGRESS, {"progress": value, "current_stage": self.stage}
        )

    async def status(self) -> str | None:
        async with self.pool.acquire() as conn:
            return await job_rows.job_status(conn, self.job["id"])


def _is_last_attempt() -> tuple[bool, int]:
    message = CurrentMessage.get_current_message()
    if message is None:
        return True, 1
    retries = int(message.options.get("retries", 0))
    max_retries = int(message.options.get("max_retries", 0)) or _actor_max_retries(message)
    return retries >= max_retries, retries + 1


def _actor_max_retries(message: dramatiq.Message[Any]) -> int:
    broker = dramatiq.get_broker()
    actor = broker.get_actor(message.actor_name)
    return int(actor.options.get("max_retries", 0))


async def fail_job(
    pool: asyncpg.Pool, job_id: str, stage: str, error: str, *, permanent: bool, attempts: int
) -> None:
    deliveries: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        failed = await job_rows.fail_job(conn, job_id, error)
        await job_rows.record_failed_operation(
            conn, stage=stage, job_id=job_id, error=error, permanent=permanent, attempts=attempts
        )
        if failed:
            await job_rows.add_log(conn, job_id, "ERROR", error, {"step": stage})
            deliveries = await webhook_rows.emit_job_event(
                conn, job_id, webhook_events.JOB_FAILED, public_base_url=notify.public_base_url()
            )
    if failed:  # the bump right after the commit, before the webhook sends
        await invalidate_job_cache(pool, job_id)
    await notify.send_deliveries(deliveries)
    if failed:
        await job_events().publish_log(job_id, "ERROR", error, stage)
        await _publish_end(pool, job_id)


async def _publish_end(pool: asyncpg.Pool, job_id: str) -> None:
    async with pool.acquire() as conn:
        row = await job_rows.job_by_id(conn, job_id)
    if row is not None:
        await job_events().publish(job_id, live.END, live.end_data(row))


async def _stage_events(conn: asyncpg.Connection, job: asyncpg.Record, stage: str) -> list[str]:
    """job.started when parsing takes a queued job; job.progress when the
    stage's starting progress reaches a new 10 % step (render, thumbnails)."""
    base_url = notify.public_base_url()
    deliveries: list[str] = []
    if stage == STAGE_ORDER[0] and job["status"] == JobStatus.QUEUED:
        deliveries += await webhook_rows.emit_job_event(
            conn, job["id"], webhook_events.JOB_STARTED, public_base_url=base_url
        )
    deliveries += await webhook_rows.emit_job_event(
        conn, job["id"], webhook_events.JOB_PROGRESS, public_base_url=base_url
    )
    return deliveries


async def _publish_stage_start(job: asyncpg.Record, stage: str, progress: int) -> None:
    events, progress = job_events(), max(progress, job["progress"])
    if job["status"] == JobStatus.QUEUED:
        await events.publish(
            job["id"],
            live.STATUS,
            {"status": JobStatus.PROCESSING, "progress": progress, "current_stage": stage},
        )
    await events.publish(job["id"], live.STAGE, {"stage": stage, "progress": progress})
    await events.publish_log(job["id"], "INFO", f"Stage {stage} started", stage)


@contextlib.asynccontextmanager
async def stage_run(job_id: str, stage: str, progress: int) -> AsyncIterator[StageRun | None]:
    pool = await db_pool()
    async with pool.acquire() as conn:
        job = await job_rows.job_by_id(conn, job_id)
        if job is None or job["status"] not in statuses.LIVE:
            log.info("job %s is %s; %s message dropped", job_id, job and job["status"], stage)
            yield None
            return
        if STAGE_ORDER.index(stage) < STAGE_ORDER.index(job["current_stage"] or "parse"):
            log.info("job %s is past %s; late message dropped", job_id, stage)
            yield None
            return
        async with conn.transaction():
            await job_rows.start_stage(conn, job_id, stage, progress)
            await job_rows.add_log(
                conn,
                job_id,
                "INFO",
                f"Stage {stage} started",
                {"step": stage, "progress": progress},
            )
            deliveries = await _stage_events(conn, job, stage)
    # Right after the commit: until the bump, reads get the entry from before
    # it, so the slower webhook sends come after.
    await invalidate_cache(job["owner_id"])
    await notify.send_deliveries(deliveries)
    await _publish_stage_start(job, stage, progress)
    try:
        yield StageRun(job, stage, pool, webhook_events.progress_step(progress))
    except T2MError as exc:
        last, attempts = _is_last_attempt()
        if not exc.retryable or last:
            await fail_job(
                pool,
                job_id,
                stage,
                f"{stage} failed: {exc.message}",
                permanent=not exc.retryable,
                attempts=attempts,
            )
            return  # handled: the message is acknowledged
        await StageRun(job, stage, pool).log(
            "WARNING", f"{stage} failed, will retry: {exc.message}"
        )
        raise
    except Exception as exc:  # unexpected: retried, and failed on the last attempt
        last, attempts = _is_last_attempt()
        if last:
            log.exception("job %s: %s gave up", job_id, stage)
            await fail_job(
                pool,
                job_id,
                stage,
                f"{stage} failed: {type(exc).__name__}: {exc}",
                permanent=False,
                attempts=attempts,
            )
            return
        await StageRun(job, stage, pool).log(
            "WARNING", f"{stage} failed, will retry: {type(exc).__name__}"
        )
        raise
