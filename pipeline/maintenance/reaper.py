"""The stuck-job reaper: re-enqueue the jobs whose message was lost, fail
those re-enqueued too often.

A job is left alone while anything says it may still progress: a message for
it in the broker, or a live worker on it (see :func:`_may_be_running`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from db import housekeeping
from db import jobs as job_rows
from db import operations as op_rows
from pipeline.maintenance.context import MaintenanceContext
from t2m.broker import DramatiqKeys, broker_redis_url
from t2m.cache_generation import bump_generations
from t2m.job_status import JobStatus
from t2m.queues import VIDEO_STAGE_ACTORS, ActorRef
from t2m.redis_client import create_redis
from t2m.settings import Settings
from t2m.worker_heartbeats import SCAN_COUNT, read_heartbeats

log = logging.getLogger(__name__)

BATCH = 5000


@dataclass(frozen=True)
class _Liveness:
    queues: set[str]  # served by a live worker
    # Job ids live workers are working on now; None when some worker's
    # heartbeat does not say (an older worker): then a served queue counts.
    active: set[str] | None
    # Job ids a pipeline message in the broker still carries (waiting in a
    # backlog, delayed for a retry, or fetched and not yet acknowledged);
    # None when the broker is not Redis and its messages cannot be read.
    in_broker: set[str] | None


def _job_of(raw: str | bytes) -> str | None:
    """The job id a stage message carries: its first argument."""
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    args = message.get("args") if isinstance(message, dict) else None
    if args and isinstance(args[0], str):
        return args[0]
    return None


async def _broker_job_ids(client: aioredis.Redis, settings: Settings) -> set[str]:
    """Job ids referenced by a live message of a pipeline queue.

    Dramatiq's Redis broker keeps every message that is neither acknowledged
    nor dead-lettered in ``<bns>:<queue>.msgs`` (ready, prefetched, in flight,
    held by a dead worker until maintenance hands it back) or, while delayed,
    in ``<bns>:<queue>.DQ.msgs`` (layout: :mod:`t2m.broker`).  HSCAN
    reads them in bounded batches instead of one reply the size of a backlog.

    Queues are read in pipeline order: a stage sends the next stage's message
    before its own is acknowledged, so a job handed on during this scan is
    seen either in the queue just read or in a later one.  Within a queue the
    delay queue comes first for the same reason (a retry due now is sent to
    the queue before it leaves the delay queue).
    """
    keys = DramatiqKeys.of(settings)
    jobs: set[str] = set()
    for ref in VIDEO_STAGE_ACTORS.values():
        for key in (keys.delayed_messages(ref.queue_name), keys.messages(ref.queue_name)):
            async for _, raw in client.hscan_iter(key, count=SCAN_COUNT):
                job_id = _job_of(raw)
                if job_id is not None:
                    jobs.add(job_id)
    return jobs


async def _in_broker(client: aioredis.Redis, settings: Settings) -> set[str] | None:
    if settings.effective_broker_url == settings.redis_url:
        return await _broker_job_ids(client, settings)
    broker_url = broker_redis_url(settings)
    if broker_url is None:
        return None  # RabbitMQ (or a stub): its queues cannot be read here
    own = create_redis(settings.with_overrides(redis_url=broker_url))
    try:
        return await _broker_job_ids(own, settings)
    finally:
        await own.aclose()


async def _liveness(client: aioredis.Redis | None, settings: Settings) -> _Liveness | None:
    """What live workers serve and run, from their heartbeats, and which jobs
    still have a message in the broker; ``None`` when Redis cannot tell."""
    if client is None:
        return None
    try:
        beats = await read_heartbeats(client, settings)
        in_broker = await _in_broker(client, settings)
    except Exception as exc:  # unknown liveness: the reaper must not guess
        log.warning("reaper cannot read worker heartbeats or broker queues: %r", exc)
        return None
    queues = {queue for beat in beats for queue in beat.get("queues", [])}
    if all("active" in beat for beat in beats):
        active = {job for beat in beats for job in beat["active"]}
        return _Liveness(queues, active, in_broker)
    return _Liveness(queues, None, in_broker)


def _may_be_running(job: asyncpg.Record, queue: str, live: _Liveness) -> bool:
    """Whether the job may still progress without the reaper (queued or processing).

    A message for it still in the broker means a backlog, not a loss: the
    job row keeps the last finished stage and its time while the next
    stage's message waits, so age alone would re-run a finished stage.
    A served queue alone is not enough when heartbeats list the running jobs:
    a message lost between stages (Redis restarted empty) would leave its
    job stuck for as long as any worker serves that queue.
    """
    if live.in_broker is not None and job["id"] in live.in_broker:
        return True
    if live.active is not None:
        return job["id"] in live.active
    return job["status"] == JobStatus.PROCESSING and queue in live.queues


async def reap_stuck_jobs(
    ctx: MaintenanceContext,
    processing_after_s: float | None = None,
    queued_after_s: float | None = None,
    max_requeues: int | None = None,
) -> dict[str, Any]:
    """Re-enqueue jobs whose message was lost; fail those requeued too often."""
    s = ctx.settings
    processing_after = (
        s.stuck_processing_after_s if processing_after_s is None else processing_after_s
    )
    queued_after = s.stuck_queued_after_s if queued_after_s is None else queued_after_s
    limit = s.stuck_max_requeues if max_requeues is None else max_requeues
    live = await _liveness(ctx.redis, s)
    if live is None:
        return {"requeued": [], "failed": [], "skipped": "worker liveness unknown"}
    requeued: list[str] = []
    failed: list[str] = []
    to_send: list[tuple[ActorRef, str]] = []
    async with ctx.pool.acquire() as conn, conn.transaction():
        jobs = await op_rows.stuck_jobs(
            conn, processing_after_s=processing_after, queued_after_s=queued_after, limit=BATCH
        )
        for job in jobs:
            stage = (
                "parse" if job["status"] == JobStatus.QUEUED else (job["current_stage"] or "parse")
            )
            ref = VIDEO_STAGE_ACTORS.get(stage)
            if ref is None:
                continue
            if _may_be_running(job, ref.queue_name, live):
                continue  # its message waits in the broker, or a live worker is on it
            if job["requeue_count"] >= limit:
                error = (
                    f"{stage} stalled: no progress for over {processing_after:.0f} s and "
                    f"re-enqueued {job['requeue_count']} times without finishing"
                )
                if await job_rows.fail_job(conn, job["id"], error):
                    await job_rows.add_log(conn, job["id"], "ERROR", error, {"step": stage})
                    await job_rows.record_failed_operation(
                        conn,
                        stage=stage,
                        job_id=job["id"],
                        error=error,
                        permanent=False,
                        attempts=job["requeue_count"] + 1,
                    )
                    failed.append(job["id"])
                continue
            await op_rows.count_requeue(conn, job["id"])
            await job_rows.add_log(
                conn,
                job["id"],
                "WARNING",
                f"Stage {stage} re-enqueued by the stuck-job reaper",
                {"step": stage, "requeue": job["requeue_count"] + 1},
            )
            to_send.append((ref, job["id"]))
    # After commit, so a worker taking the message sees the counted requeue.
    for ref, job_id in to_send:
        await ctx.send(ref, job_id)
        requeued.append(job_id)
    if failed:
        async with ctx.pool.acquire() as conn:
            owners = await housekeeping.owners_of_jobs(conn, failed)
        await bump_generations(ctx.redis, ctx.settings, owners)
    return {"requeued": requeued, "failed": failed}
