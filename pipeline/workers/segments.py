"""Actors of segmented rendering: the sound, one message per segment, then the join.

``render_video`` dispatches a segmented storyboard (segment_dispatch); any
render worker on any host takes a ``render_sound(job_id)`` or a
``render_segment(job_id, index)`` message, renders that piece into storage
under its content key (segment_render.segment_key, segment_sound.sound_key)
unless it is there already, and updates the job's progress from the pieces
stored.  The worker that finds the last one stored moves the job to
``assemble`` (one database update decides which) and sends
``assemble_video``, which joins them by stream copy and hands on to
thumbnails as a single pass does.

A piece's message never redoes stored work: a redelivery, a retry after a
killed worker and a re-render of an edited script reuse every unchanged
segment and an unchanged sound.  Only pieces younger than half the segment
retention are reused (an older one is rendered again, which refreshes it),
so segment cleanup never takes a piece a render has just counted on.
Cancel is polled every 0.3 s by every running piece; a piece that fails for
good fails the job naming its scenes.  Each piece rendered adds its time to
the job's ``render_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from db import jobs as job_rows
from pipeline.stages.segment_assemble import assemble_video
from pipeline.stages.segment_plan import Segment
from pipeline.stages.segment_render import render_segment
from pipeline.stages.segment_sound import SOUND_FILE, render_sound, sound_assets
from pipeline.stages.storyboard import Storyboard
from pipeline.workers import runtime
from pipeline.workers.jobs import StageRun, _is_last_attempt, fail_job, stage_run
from pipeline.workers.resources import db_pool, storage
from pipeline.workers.segment_dispatch import Pieces, asset_checksums, pieces
from pipeline.workers.video import (
    RENDER_AT,
    RENDER_END,
    _RenderWatch,
    _storyboard_key,
    fetch_assets,
    fetch_narration,
    store_render_result,
)
from t2m.errors import T2MError
from t2m.queues import ASSEMBLE_VIDEO, RENDER_SEGMENT, RENDER_SOUND
from t2m.scratch import attempt_dir

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# The pieces' share of the render progress; the join takes the rest.
SEGMENTS_END = RENDER_END - 2


def worker_name() -> str:
    """How job logs name the worker (the heartbeat's identity)."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def _load(run: StageRun) -> tuple[Storyboard, Pieces]:
    raw = await storage().get_bytes(_storyboard_key(run.job["id"]))
    sb = Storyboard.from_dict(json.loads(raw))
    return sb, pieces(sb, await asset_checksums(run.pool, sb))


def _segment_objects(sb: Storyboard, prefix: str) -> list[str]:
    return [f"{prefix}/{r.quality}.mp4" for r in sb.renditions]


def _sound_object(prefix: str) -> str:
    return f"{prefix}/{SOUND_FILE}"


async def _fresh(keys: list[str]) -> bool:
    """Every object is stored, and young enough to be reused (see the docstring)."""
    keep = timedelta(hours=runtime.settings.segment_retention_hours / 2)
    for key in keys:
        info = await storage().stat(key)
        if info is None or info.modified < datetime.now(UTC) - keep:
            return False
    return True


def _piece_objects(sb: Storyboard, plan: Pieces) -> list[list[str]]:
    """Every piece's objects: the segments in order, then the sound."""
    return [
        *(_segment_objects(sb, prefix) for prefix in plan.segment_prefixes),
        [_sound_object(plan.sound_prefix)],
    ]


async def _render_piece(
    job_id: str,
    describe: Callable[[Storyboard, Pieces], str],
    objects: Callable[[Storyboard, Pieces], list[str]],
    render: Callable[[StageRun, Storyboard, Pieces], Awaitable[None]],
) -> None:
    """One piece's message: reuse or render it, then hand on if it was the last.

    A failure for good (or on the last attempt) fails the job naming the piece."""
    pool = await db_pool()
    async with pool.acquire() as conn:
        job = await job_rows.job_by_id(conn, job_id)
    if job is None or job["status"] != "processing" or job["current_stage"] != "render":
        log.info("job %s: piece message dropped", job_id)
        return
    run = StageRun(job, "render", pool)
    sb, plan = await _load(run)
    what = describe(sb, plan)
    try:
        keys = objects(sb, plan)
        if await _fresh(keys):
            await run.log("INFO", f"{what} reused", key=keys[0].rpartition("/")[0])
        else:
            await render(run, sb, plan)
        await _after_piece(run, sb, plan)
    except T2MError as exc:
        if await run.status() != "processing":
            return  # cancelled or failed meanwhile: nothing to report
        last, attempts = _is_last_attempt()
        if not exc.retryable or last:
            await fail_job(
                pool,
                job_id,
                "render",
                f"render failed: {what}: {exc.message}",
                permanent=not exc.retryable,
                attempts=attempts,
            )
            return
        await run.log("WARNING", f"{what} failed, will retry: {exc.message}")
        raise
    except Exception as exc:
        last, attempts = _is_last_attempt()
        if last and await run.status() == "processing":
            log.exception("job %s: %s gave up", job_id, what)
            await fail_job(
                pool,
                job_id,
                "render",
                f"render failed: {what}: {type(exc).__name__}: {exc}",
                permanent=False,
                attempts=attempts,
            )
            return
        raise


@runtime.actor(RENDER_SEGMENT, max_retries=3, time_limit=3600 * 1000)
async def render_segment_stage(job_id: str, index: int) -> None:
    async def render(run: StageRun, sb: Storyboard, plan: Pieces) -> None:
        await _render_segment(run, sb, plan.parts[index], plan.segment_prefixes[index])

    await _render_piece(
        job_id,
        lambda sb, plan: plan.parts[index].describe(),
        lambda sb, plan: _segment_objects(sb, plan.segment_prefixes[index]),
        render,
    )


@runtime.actor(RENDER_SOUND, max_retries=3, time_limit=3600 * 1000)
async def render_sound_stage(job_id: str) -> None:
    await _render_piece(
        job_id,
        lambda sb, plan: "the sound",
        lambda sb, plan: [_sound_object(plan.sound_prefix)],
        _render_sound,
    )


async def _watched(run: StageRun, work: Callable[[Callable[[], bool]], _T]) -> _T:
    """Run ``work(should_cancel)`` in a thread while the job's status is polled."""
    watch = _RenderWatch(run, asyncio.get_running_loop())
    poller = asyncio.create_task(watch.poll_cancel())
    try:
        return await asyncio.to_thread(work, watch.should_cancel)
    finally:
        watch.cancelled.set()
        poller.cancel()


async def _rendered(run: StageRun, what: str, started: float, **details: object) -> None:
    """Count a piece's time in the job's render_seconds and log who made it."""
    seconds = time.monotonic() - started
    async with run.pool.acquire() as conn:
        await job_rows.add_render_seconds(conn, run.job["id"], seconds)
    await run.log(
        "INFO",
        f"{what} rendered on {worker_name()} in {seconds:.1f} s",
        host=worker_name(),
        seconds=round(seconds, 3),
        **details,
    )


async def _render_segment(run: StageRun, sb: Storyboard, part: Segment, prefix: str) -> None:
    job_id = run.job["id"]
    started = time.monotonic()
    with attempt_dir(runtime.settings, "segment", f"{job_id}-{part.index:04d}") as work:
        scenes = sb.scenes[max(0, part.first - 1) : part.end]
        ids = [s.background.asset_id for s in scenes if s.background.asset_id]
        asset_paths = await fetch_assets(run, ids, work)
        files = await _watched(
            run,
            lambda should_cancel: render_segment(
                sb,
                part,
                work / "out",
                asset_paths=asset_paths,
                should_cancel=should_cancel,
                timeout_s=runtime.settings.ffmpeg_timeout_s or None,
                memory_limit_bytes=runtime.settings.ffmpeg_memory_limit_mb * 1024 * 1024 or None,
            ),
        )
        # The primary rendition last: its presence is what "stored" means first.
        for quality, path in reversed(list(files.items())):
            await storage().put_file(f"{prefix}/{quality}.mp4", path, content_type="video/mp4")
    await _rendered(run, part.describe(), started, segment=part.index, key=prefix)


async def _render_sound(run: StageRun, sb: Storyboard, plan: Pieces) -> None:
    job_id = run.job["id"]
    started = time.monotonic()
    with attempt_dir(runtime.settings, "sound", job_id) as work:
        asset_paths = await fetch_assets(run, sound_assets(sb), work)
        narration_paths = await fetch_narration(sb, work)
        sound = await _watched(
            run,
            lambda should_cancel: render_sound(
                sb,
                work / "out",
                asset_paths=asset_paths,
                narration_paths=narration_paths,
                should_cancel=should_cancel,
            ),
        )
        await storage().put_file(_sound_object(plan.sound_prefix), sound, content_type="audio/mp4")
    await _rendered(run, "the sound", started, key=plan.sound_prefix)


async def _after_piece(run: StageRun, sb: Storyboard, plan: Pieces) -> None:
    """Progress from the pieces logged done; the last one stored hands on to the join.

    Pieces finish about in queue order, so looking from the last one a piece
    still missing is found at once: only the piece that completes the set
    looks at them all (a storage look-up per piece, never per piece squared)."""
    async with run.pool.acquire() as conn:
        done = await job_rows.count_logged_keys(conn, run.job["id"], plan.prefixes())
    total = len(plan.prefixes())
    await run.progress(RENDER_AT + int((SEGMENTS_END - RENDER_AT) * min(done, total) / total))
    for keys in reversed(_piece_objects(sb, plan)):
        if not await _fresh(keys):
            return
    async with run.pool.acquire() as conn:
        moved = await job_rows.advance_stage(conn, run.job["id"], "render", "assemble")
    if moved:
        await runtime.enqueuer().send(ASSEMBLE_VIDEO, run.job["id"])


@runtime.actor(ASSEMBLE_VIDEO, max_retries=3, time_limit=3600 * 1000)
async def assemble_video_stage(job_id: str) -> None:
    async with stage_run(job_id, "assemble", SEGMENTS_END) as run:
        if run is None:
            return
        with attempt_dir(runtime.settings, "assemble", job_id) as work:
            await _assemble(run, work)


async def _assemble(run: StageRun, work: Path) -> None:
    started = time.monotonic()
    sb, plan = await _load(run)
    files: dict[str, list[Path]] = {r.quality: [] for r in sb.renditions}
    for part, prefix in zip(plan.parts, plan.segment_prefixes, strict=True):
        for rendition in sb.renditions:
            local = work / "segments" / f"{part.index:04d}_{rendition.quality}.mp4"
            local.parent.mkdir(parents=True, exist_ok=True)
            await storage().download_to(f"{prefix}/{rendition.quality}.mp4", local)
            files[rendition.quality].append(local)
    sound = work / SOUND_FILE
    await storage().download_to(_sound_object(plan.sound_prefix), sound)
    result = await _watched(
        run,
        lambda should_cancel: assemble_video(
            sb, files, sound, work / "out", should_cancel=should_cancel
        ),
    )
    await run.log("INFO", f"Joined {len(plan.parts)} segments", segments=len(plan.parts))
    await store_render_result(run, result, started, add_render_seconds=True)
