"""Actors of segmented rendering: one message per segment, then the join.

``render_video`` dispatches a segmented storyboard (segment_dispatch); any
render worker on any host takes a ``render_segment(job_id, index)``
message, renders that segment into storage under its content key
(segment_render.segment_key) unless it is there already, and updates the
job's progress from the segments stored.  The worker that finds the last one
stored moves the job to ``assemble`` (one database update decides which) and
sends ``assemble_video``, which joins them and hands on to thumbnails as a
single pass does.

A segment's message never redoes stored work: a redelivery, a retry after a
killed worker and a re-render of an edited script reuse every unchanged
segment.  Cancel is polled every 0.3 s by every running segment; a segment
that fails for good fails the job naming its scenes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path

import dramatiq

from db import files as file_rows
from db import jobs as job_rows
from pipeline.stages.segment_assemble import assemble_video
from pipeline.stages.segment_plan import Segment, segments
from pipeline.stages.segment_render import render_segment, segment_key
from pipeline.stages.storyboard import Storyboard
from pipeline.workers import runtime
from pipeline.workers.jobs import StageRun, _is_last_attempt, fail_job, stage_run
from pipeline.workers.resources import db_pool, storage
from pipeline.workers.video import (
    RENDER_AT,
    RENDER_END,
    _RenderWatch,
    _storyboard_key,
    store_render_result,
)
from t2m.enqueue import Enqueuer
from t2m.errors import T2MError, ValidationFailed
from t2m.queues import ASSEMBLE_VIDEO, RENDER_SEGMENT
from t2m.scratch import attempt_dir

log = logging.getLogger(__name__)

# The segments' share of the render progress; the join takes the rest.
SEGMENTS_END = RENDER_END - 2


def worker_name() -> str:
    """How job logs name the worker (the heartbeat's identity)."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def _load(job_id: str) -> tuple[Storyboard, list[Segment]]:
    sb = Storyboard.from_dict(json.loads(await storage().get_bytes(_storyboard_key(job_id))))
    return sb, segments(sb, list(sb.segments))


async def _fetch_assets(run: StageRun, ids: Iterable[str], work: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    async with run.pool.acquire() as conn:
        for asset_id in dict.fromkeys(ids):
            row = await file_rows.file_by_id(conn, asset_id)
            if row is None:
                raise ValidationFailed(f"asset {asset_id} was deleted")
            local = work / "assets" / asset_id
            local.parent.mkdir(parents=True, exist_ok=True)
            await storage().download_to(row["storage_key"], local)
            paths[asset_id] = local
    return paths


async def _checksums(run: StageRun, sb: Storyboard) -> dict[str, str]:
    """Asset id → content checksum: part of every segment's key."""
    ids = {s.background.asset_id for s in sb.scenes if s.background.asset_id}
    sums: dict[str, str] = {}
    async with run.pool.acquire() as conn:
        for asset_id in sorted(a for a in ids if a):
            row = await file_rows.file_by_id(conn, asset_id)
            if row is None:
                raise ValidationFailed(f"asset {asset_id} was deleted")
            sums[asset_id] = str(row["blob_sha256"])
    return sums


def _object_keys(sb: Storyboard, prefix: str) -> list[str]:
    return [f"{prefix}/{r.quality}.mp4" for r in sb.renditions]


async def _stored(sb: Storyboard, prefix: str) -> bool:
    for key in _object_keys(sb, prefix):
        if not await storage().exists(key):
            return False
    return True


@dramatiq.actor(
    actor_name=RENDER_SEGMENT.actor_name,
    queue_name=RENDER_SEGMENT.queue_name,
    max_retries=3,
    time_limit=3600 * 1000,
)
async def render_segment_stage(job_id: str, index: int) -> None:
    pool = await db_pool()
    async with pool.acquire() as conn:
        job = await job_rows.job_by_id(conn, job_id)
    if job is None or job["status"] != "processing" or job["current_stage"] != "render":
        log.info("job %s: segment %s message dropped", job_id, index)
        return
    run = StageRun(job, "render", pool)
    sb, parts = await _load(job_id)
    part = parts[index]
    try:
        sums = await _checksums(run, sb)
        prefix = segment_key(sb, part, sums)
        if await _stored(sb, prefix):
            await run.log("INFO", f"{part.describe()} reused", segment=index, key=prefix)
        else:
            await _render_one(run, sb, part, prefix)
        await _after_segment(run, sb, parts, sums)
    except T2MError as exc:
        if await run.status() != "processing":
            return  # cancelled or failed meanwhile: nothing to report
        last, attempts = _is_last_attempt()
        if not exc.retryable or last:
            await fail_job(
                pool,
                job_id,
                "render",
                f"render failed: {part.describe()}: {exc.message}",
                permanent=not exc.retryable,
                attempts=attempts,
            )
            return
        await run.log("WARNING", f"{part.describe()} failed, will retry: {exc.message}")
        raise
    except Exception as exc:
        last, attempts = _is_last_attempt()
        if last and await run.status() == "processing":
            log.exception("job %s: %s gave up", job_id, part.describe())
            await fail_job(
                pool,
                job_id,
                "render",
                f"render failed: {part.describe()}: {type(exc).__name__}: {exc}",
                permanent=False,
                attempts=attempts,
            )
            return
        raise


async def _render_one(run: StageRun, sb: Storyboard, part: Segment, prefix: str) -> None:
    job_id = run.job["id"]
    started = time.monotonic()
    with attempt_dir(runtime.settings, "segment", f"{job_id}-{part.index:04d}") as work:
        scenes = sb.scenes[max(0, part.first - 1) : part.end]
        ids = [s.background.asset_id for s in scenes if s.background.asset_id]
        asset_paths = await _fetch_assets(run, ids, work)
        watch = _RenderWatch(run, asyncio.get_running_loop())
        poller = asyncio.create_task(watch.poll_cancel())
        try:
            files = await asyncio.to_thread(
                render_segment,
                sb,
                part,
                work / "out",
                asset_paths=asset_paths,
                should_cancel=watch.should_cancel,
                timeout_s=runtime.settings.ffmpeg_timeout_s or None,
                memory_limit_bytes=runtime.settings.ffmpeg_memory_limit_mb * 1024 * 1024 or None,
            )
        finally:
            watch.cancelled.set()
            poller.cancel()
        # The primary rendition last: its presence is what "stored" means first.
        for quality, path in reversed(list(files.items())):
            await storage().put_file(f"{prefix}/{quality}.mp4", path, content_type="video/mp4")
    await run.log(
        "INFO",
        f"{part.describe()} rendered on {worker_name()} in {time.monotonic() - started:.1f} s",
        segment=part.index,
        host=worker_name(),
        key=prefix,
    )


async def _after_segment(
    run: StageRun, sb: Storyboard, parts: list[Segment], sums: dict[str, str]
) -> None:
    """Progress from the segments stored; the last one found hands on to the join."""
    done = 0
    for part in parts:
        done += await _stored(sb, segment_key(sb, part, sums))
    await run.progress(RENDER_AT + int((SEGMENTS_END - RENDER_AT) * done / len(parts)))
    if done < len(parts):
        return
    async with run.pool.acquire() as conn:
        moved = await job_rows.advance_stage(conn, run.job["id"], "render", "assemble")
    if moved:
        await Enqueuer(runtime.broker).send(ASSEMBLE_VIDEO, run.job["id"])


@dramatiq.actor(
    actor_name=ASSEMBLE_VIDEO.actor_name,
    queue_name=ASSEMBLE_VIDEO.queue_name,
    max_retries=3,
    time_limit=3600 * 1000,
)
async def assemble_video_stage(job_id: str) -> None:
    async with stage_run(job_id, "assemble", SEGMENTS_END) as run:
        if run is None:
            return
        with attempt_dir(runtime.settings, "assemble", job_id) as work:
            await _assemble(run, work)


async def _assemble(run: StageRun, work: Path) -> None:
    job_id = run.job["id"]
    started = time.monotonic()
    sb, parts = await _load(job_id)
    sums = await _checksums(run, sb)
    files: dict[str, list[Path]] = {r.quality: [] for r in sb.renditions}
    for part in parts:
        prefix = segment_key(sb, part, sums)
        for rendition in sb.renditions:
            local = work / "segments" / f"{part.index:04d}_{rendition.quality}.mp4"
            local.parent.mkdir(parents=True, exist_ok=True)
            await storage().download_to(f"{prefix}/{rendition.quality}.mp4", local)
            files[rendition.quality].append(local)
    music = [sb.music.asset_id] if sb.music is not None else []
    asset_paths = await _fetch_assets(run, music, work)
    narration_paths: dict[str, Path] = {}
    for number, key in enumerate(dict.fromkeys(c.audio_key for c in sb.narration)):
        local = work / "tts" / f"clip_{number:05d}.wav"
        local.parent.mkdir(parents=True, exist_ok=True)
        await storage().download_to(key, local)
        narration_paths[key] = local
    watch = _RenderWatch(run, asyncio.get_running_loop())
    poller = asyncio.create_task(watch.poll_cancel())
    try:
        result = await asyncio.to_thread(
            assemble_video,
            sb,
            files,
            work / "out",
            asset_paths=asset_paths,
            narration_paths=narration_paths,
            should_cancel=watch.should_cancel,
        )
    finally:
        watch.cancelled.set()
        poller.cancel()
    await run.log("INFO", f"Joined {len(parts)} segments", segments=len(parts))
    await store_render_result(run, result, started)
