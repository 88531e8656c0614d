"""Operations tasks: temp cleanup, log rotation, stuck-job reaper, purge.

Each task takes a :class:`MaintenanceContext` plus optional parameters whose
defaults come from settings, and returns counts and the keys it touched.
:func:`run_task` runs one and records it in ``maintenance_runs``; the worker
actor, the CLI and the admin endpoints all go through it.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from db import files as file_rows
from db import housekeeping
from db import jobs as job_rows
from db import operations as op_rows
from t2m.cache_generation import bump_generations
from t2m.queues import (
    ASSEMBLE_VIDEO,
    BUILD_STORYBOARD,
    MAKE_THUMBNAILS,
    PARSE_SCRIPT,
    RENDER_VIDEO,
    ActorRef,
)
from t2m.redis_client import create_redis
from t2m.scratch import reap_dead_attempts, scratch_root
from t2m.settings import Settings
from t2m.storage import Storage
from t2m.worker_heartbeats import SCAN_COUNT, read_heartbeats

log = logging.getLogger(__name__)

Send = Callable[[ActorRef, str], Awaitable[str]]

STAGE_ACTORS: dict[str, ActorRef] = {
    "parse": PARSE_SCRIPT,
    "storyboard": BUILD_STORYBOARD,
    # Re-sent, the render message re-sends every segment's; segments already
    # stored are not rendered again (pipeline.workers.segments).
    "render": RENDER_VIDEO,
    "assemble": ASSEMBLE_VIDEO,
    "thumbnails": MAKE_THUMBNAILS,
}
BATCH = 5000


@dataclass
class MaintenanceContext:
    pool: asyncpg.Pool
    settings: Settings
    storage: Storage
    send: Send
    redis: aioredis.Redis | None = None


async def clean_tmp(ctx: MaintenanceContext, max_age_hours: float | None = None) -> dict[str, Any]:
    """Delete ``tmp/`` objects and partial writes older than the age, and the
    local scratch directories of attempts that started before it and are over.

    Only this instance's scratch root is looked at, and only directories whose
    marker proves them an attempt's: a live attempt's directory stays whatever
    the age (see :mod:`t2m.scratch`).
    """
    hours = ctx.settings.tmp_max_age_hours if max_age_hours is None else max_age_hours
    cutoff = datetime.now(UTC) - timedelta(hours=hours)
    removed: list[str] = []
    async for info in ctx.storage.list("tmp/"):
        if info.modified < cutoff:
            await ctx.storage.delete(info.key)
            removed.append(info.key)
    # Half-written objects of a writer that died (an API killed mid-upload).
    removed += await ctx.storage.reap_partial_writes(cutoff)
    # Removing trees is blocking file work: off the event loop (the API runs this too).
    reaped = await asyncio.to_thread(
        reap_dead_attempts, scratch_root(ctx.settings), started_before=cutoff.timestamp()
    )
    local = [str(path) for path in reaped]
    return {
        "max_age_hours": hours,
        "deleted": len(removed),
        "objects": removed,
        "local_dirs": local,
    }


def _jsonl_gz(rows: list[asyncpg.Record]) -> bytes:
    lines = (
        json.dumps(
            {
                "id": r["id"],
                "job_id": r["job_id"],
                "ts": r["ts"].isoformat(),
                "level": r["level"],
                "message": r["message"],
                "details": r["details"],
            },
            default=str,
        )
        for r in rows
    )
    return gzip.compress(("\n".join(lines) + "\n").encode())


async def rotate_logs(ctx: MaintenanceContext, max_age_days: float | None = None) -> dict[str, Any]:
    """Archive job logs and ``logs/`` objects older than the age under ``archive/``."""
    days = ctx.settings.log_max_age_days if max_age_days is None else max_age_days
    cutoff = datetime.now(UTC) - timedelta(days=days)
    archives: list[str] = []
    rows_archived = 0
    while True:
        # One transaction per batch: if the archive write fails the rows stay.
        async with ctx.pool.acquire() as conn, conn.transaction():
            rows = await op_rows.old_job_logs(conn, cutoff=cutoff, limit=BATCH)
            if not rows:
                break
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            key = f"archive/job_logs/{stamp}-{rows[0]['id']}-{rows[-1]['id']}.jsonl.gz"
            await ctx.storage.put_bytes(key, _jsonl_gz(rows), content_type="application/gzip")
            rows_archived += await op_rows.delete_job_logs(conn, [r["id"] for r in rows])
            archives.append(key)
        if len(rows) < BATCH:
            break
    moved: list[str] = []
    async for info in ctx.storage.list("logs/"):
        if info.modified < cutoff:
            target = "archive/" + info.key
            await ctx.storage.move(info.key, target)
            moved.append(target)
    return {
        "max_age_days": days,
        "job_log_rows": rows_archived,
        "archives": archives,
        "log_objects": moved,
    }


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


def _broker_namespace(settings: Settings) -> str:
    # Must match pipeline/workers/broker.py.
    return f"{settings.redis_namespace}-dramatiq"


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
    in ``<bns>:<queue>.DQ.msgs`` (layout: ``api/queue_status.py``).  HSCAN
    reads them in bounded batches instead of one reply the size of a backlog.

    Queues are read in pipeline order: a stage sends the next stage's message
    before its own is acknowledged, so a job handed on during this scan is
    seen either in the queue just read or in a later one.  Within a queue the
    delay queue comes first for the same reason (a retry due now is sent to
    the queue before it leaves the delay queue).
    """
    ns = _broker_namespace(settings)
    jobs: set[str] = set()
    for ref in STAGE_ACTORS.values():
        for key in (f"{ns}:{ref.queue_name}.DQ.msgs", f"{ns}:{ref.queue_name}.msgs"):
            async for _, raw in client.hscan_iter(key, count=SCAN_COUNT):
                job_id = _job_of(raw)
                if job_id is not None:
                    jobs.add(job_id)
    return jobs


async def _in_broker(client: aioredis.Redis, settings: Settings) -> set[str] | None:
    broker_url = settings.effective_broker_url
    if broker_url == settings.redis_url:
        return await _broker_job_ids(client, settings)
    if not broker_url.startswith(("redis://", "rediss://", "unix://")):
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
    return job["status"] == "processing" and queue in live.queues


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
            stage = "parse" if job["status"] == "queued" else (job["current_stage"] or "parse")
            ref = STAGE_ACTORS.get(stage)
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


async def purge_deleted(
    ctx: MaintenanceContext, grace_hours: float | None = None
) -> dict[str, Any]:
    """Remove soft-deleted files and unreferenced blobs past the grace period."""
    hours = ctx.settings.purge_grace_hours if grace_hours is None else grace_hours
    grace_s = hours * 3600
    files: list[str] = []
    async with ctx.pool.acquire() as conn:
        for row in await op_rows.expired_deleted_files(conn, grace_s=grace_s, limit=BATCH):
            for key in (row["thumbnails"] or {}).values():
                await ctx.storage.delete(key)
            await op_rows.delete_file_row(conn, row["id"])
            files.append(row["id"])
        blobs: list[str] = []
        for row in await op_rows.expired_blobs(conn, grace_s=grace_s, limit=BATCH):
            # The blob is locked while its object goes, so an upload of the
            # same content waits and then stores it afresh.
            async with conn.transaction():
                await file_rows.lock_blob(conn, row["sha256"])
                locked = await conn.fetchval(
                    "SELECT sha256 FROM blobs WHERE sha256 = $1 AND ref_count = 0 FOR UPDATE",
                    row["sha256"],
                )
                if locked is None:
                    continue
                await ctx.storage.delete(row["storage_key"])
                if await op_rows.delete_blob_row(conn, row["sha256"]):
                    blobs.append(row["storage_key"])
    return {"grace_hours": hours, "files": files, "blobs": blobs}


async def warm_cache(ctx: MaintenanceContext, users: float = 50) -> dict[str, Any]:
    """Recompute the cached report aggregates and first listing pages read
    most (admin-wide and the most recently active users')."""
    if ctx.redis is None:
        return {"skipped": "no Redis"}
    from api.cache import ReadThroughCache
    from api.cached_reads import warm

    started = time.perf_counter()
    result = await warm(ReadThroughCache(ctx.redis, ctx.settings), ctx.pool, users=int(users))
    return {**result, "duration_s": round(time.perf_counter() - started, 3)}


async def optimize(ctx: MaintenanceContext) -> dict[str, Any]:
    """Refresh the planner statistics of the hot tables and drop cache
    entries that invalidation made unreachable (rather than at their TTL)."""
    started = time.perf_counter()
    async with ctx.pool.acquire() as conn:
        await housekeeping.analyze_tables(conn)
    analyzed_s = time.perf_counter() - started
    cache: dict[str, Any] = {"skipped": "no Redis"}
    if ctx.redis is not None:
        from api.cache import ReadThroughCache

        cache = await ReadThroughCache(ctx.redis, ctx.settings).scan_entries(prune=True)
    return {
        "analyzed": list(housekeeping.HOT_TABLES),
        "analyze_s": round(analyzed_s, 3),
        "cache": cache,
        "pruned": cache.get("pruned", 0),
        "duration_s": round(time.perf_counter() - started, 3),
    }


Task = Callable[..., Awaitable[dict[str, Any]]]

OPERATIONS_TASKS: dict[str, Task] = {
    "clean_tmp": clean_tmp,
    "rotate_logs": rotate_logs,
    "reap_stuck_jobs": reap_stuck_jobs,
    "purge_deleted": purge_deleted,
    "warm_cache": warm_cache,
    "optimize": optimize,
}


async def run_task(
    ctx: MaintenanceContext, name: str, *, slot: int | None = None, **params: Any
) -> dict[str, Any]:
    """Run a maintenance task by name and record the run (also when it fails);
    ``slot`` is the schedule slot of a scheduled run."""
    from pipeline.stages.maintenance import MAINTENANCE_TASKS

    task = MAINTENANCE_TASKS[name]
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    outcome, error, result = "ok", None, {}
    try:
        result = await task(ctx, **params)
        return result
    except Exception as exc:
        outcome, error = "error", f"{type(exc).__name__}: {exc}"[:1000]
        raise
    finally:
        counts = {
            k: (len(v) if isinstance(v, list) else v)
            for k, v in result.items()
            if isinstance(v, int | float | str | list)
        }
        async with ctx.pool.acquire() as conn:
            await op_rows.insert_maintenance_run(
                conn,
                job=name,
                started_at=started_at,
                duration_s=time.perf_counter() - started,
                outcome=outcome,
                counts=counts,
                error=error,
                slot=slot,
            )
