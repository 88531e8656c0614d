"""Maintenance tasks: temp cleanup, segment cleanup, log rotation, purge, cache
warming, token expiry, the webhook sweep (the stuck-job reaper is :mod:`.reaper`).

Each task takes a :class:`MaintenanceContext` plus optional parameters whose
defaults come from settings, and returns counts and the keys it touched.
:func:`pipeline.maintenance.registry.run_task` runs one and records it in
``maintenance_runs``; the worker actor, the CLI and the admin endpoints all go
through it.  Tasks send messages through the context, never through a broker
of their own.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from db import files as file_rows
from db import housekeeping
from db import jobs as job_rows
from db import operations as op_rows
from db import tokens as token_rows
from db import webhooks as webhook_rows
from pipeline.maintenance import cached_reads
from pipeline.maintenance.context import MaintenanceContext
from pipeline.stages.segment_keys import SEGMENTS_PREFIX, references_key
from t2m.cache import ReadThroughCache
from t2m.errors import NotFound, ServiceUnavailable
from t2m.queues import DELIVER_WEBHOOK
from t2m.scratch import reap_dead_attempts, scratch_root

log = logging.getLogger(__name__)

BATCH = 5000


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


async def clean_segments(
    ctx: MaintenanceContext, retention_hours: float | None = None
) -> dict[str, Any]:
    """Delete stored segments (and timeline sounds) older than the retention
    that no live job lists.

    Only keys under ``segments/`` are looked at.  A segmented job lists its
    pieces' prefixes before it looks any up (segment_dispatch), and a render
    reuses only pieces younger than half the retention, so what a running
    render counts on is either listed here or too young to go.  The listing
    is read before the live jobs' lists, so a job starting meanwhile lists
    only pieces it will find young enough or render again.
    """
    hours = ctx.settings.segment_retention_hours if retention_hours is None else retention_hours
    cutoff = datetime.now(UTC) - timedelta(hours=hours)
    old = [
        info.key
        async for info in ctx.storage.list(SEGMENTS_PREFIX)
        if info.modified < cutoff and info.key.startswith(SEGMENTS_PREFIX)
    ]
    async with ctx.pool.acquire() as conn:
        live = await job_rows.live_job_ids(conn)
    kept: set[str] = set()
    for job_id in live:
        try:
            listed = json.loads(await ctx.storage.get_bytes(references_key(job_id)))
        except NotFound:
            continue  # not segmented, or not dispatched yet
        kept.update(str(prefix) for prefix in listed.get("prefixes", []))
    removed: list[str] = []
    for key in old:
        if key.rpartition("/")[0] in kept:
            continue
        await ctx.storage.delete(key)
        removed.append(key)
    return {
        "retention_hours": hours,
        "deleted": len(removed),
        "kept_for_live_jobs": len(old) - len(removed),
        "objects": removed,
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
    started = time.perf_counter()
    cache = ReadThroughCache(ctx.redis, ctx.settings)
    result = await cached_reads.warm(cache, ctx.pool, users=int(users))
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
        cache = await ReadThroughCache(ctx.redis, ctx.settings).scan_entries(prune=True)
    return {
        "analyzed": list(housekeeping.HOT_TABLES),
        "analyze_s": round(analyzed_s, 3),
        "cache": cache,
        "pruned": cache.get("pruned", 0),
        "duration_s": round(time.perf_counter() - started, 3),
    }


async def expire_revoked_tokens(pool: asyncpg.Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return {"deleted": await token_rows.delete_expired_revocations(conn)}


# A pending webhook delivery overdue by this much, with no attempt in flight,
# has lost its message (worker crash, Redis outage at enqueue time).
WEBHOOK_SWEEP_GRACE_S = 60.0
WEBHOOK_SWEEP_BATCH = 1000
DeliverySender = Callable[[Sequence[str]], Awaitable[None]]


async def requeue_webhook_deliveries(pool: asyncpg.Pool, send: DeliverySender) -> dict[str, Any]:
    """Enqueue again the due webhook deliveries whose message was lost."""
    async with pool.acquire() as conn:
        due = await webhook_rows.due_deliveries(
            conn, grace_s=WEBHOOK_SWEEP_GRACE_S, limit=WEBHOOK_SWEEP_BATCH
        )
    if due:
        await send(due)
    return {"requeued": len(due)}


def delivery_sender(ctx: MaintenanceContext) -> DeliverySender:
    """Send deliveries through the context; a failed enqueue leaves the
    delivery for the next sweep instead of failing the others."""

    async def send(delivery_ids: Sequence[str]) -> None:
        for delivery_id in delivery_ids:
            try:
                await ctx.send(DELIVER_WEBHOOK, delivery_id)
            except ServiceUnavailable:
                log.warning("webhook delivery %s not enqueued; the next sweep will", delivery_id)

    return send


async def expire_revoked_tokens_task(ctx: MaintenanceContext) -> dict[str, Any]:
    return await expire_revoked_tokens(ctx.pool)


async def requeue_webhook_deliveries_task(ctx: MaintenanceContext) -> dict[str, Any]:
    return await requeue_webhook_deliveries(ctx.pool, delivery_sender(ctx))
