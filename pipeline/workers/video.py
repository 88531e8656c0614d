"""The video pipeline actors: parse → (narrate) → storyboard → render → thumbnails → package.

Each actor is idempotent: it reads the job row, does its stage into
deterministic storage keys, and enqueues the next stage by name.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from db import files as file_rows
from db import jobs as job_rows
from db import quotas as quota_rows
from pipeline.stages.narrate.stage import SpeechPlan
from pipeline.stages.probe import ProbeError, probe_media
from pipeline.stages.render import RenderResult, render_video
from pipeline.stages.render_budget import check_render_budget
from pipeline.stages.script import Script, parse_script
from pipeline.stages.segment_plan import with_plan
from pipeline.stages.storyboard import Storyboard
from pipeline.stages.storyboard_planner import build_storyboard
from pipeline.stages.thumbnails import make_thumbnails
from pipeline.workers import runtime
from pipeline.workers.finalize import finalize_video
from pipeline.workers.jobs import StageRun, stage_run
from pipeline.workers.resources import invalidate_cache, storage
from pipeline.workers.segment_dispatch import dispatch_segments
from t2m.errors import ValidationFailed
from t2m.job_status import JobStatus
from t2m.queues import (
    BUILD_STORYBOARD,
    EMBED_TEXT,
    MAKE_THUMBNAILS,
    NARRATE_SCRIPT,
    PACKAGE_HLS,
    PARSE_SCRIPT,
    RENDER_VIDEO,
    ActorRef,
)
from t2m.scratch import attempt_dir

CAPTION_TYPES = {"vtt": "text/vtt; charset=utf-8", "srt": "application/x-subrip"}

log = logging.getLogger(__name__)

SCRIPT_EXCERPT_CHARS = 4000

# Progress budget of each stage (percent of the whole job).
PARSE_AT, STORYBOARD_AT, RENDER_AT, RENDER_END, THUMBNAILS_AT = 1, 5, 10, 90, 92


def _next(ref: ActorRef, job_id: str) -> None:
    runtime.enqueuer().send_now(ref, job_id)


def _parsed_key(job_id: str) -> str:
    return f"scripts/{job_id}.parsed.json"


def _speech_key(job_id: str) -> str:
    return f"scripts/{job_id}.speech.json"  # written by the narrate stage


def _storyboard_key(job_id: str) -> str:
    return f"storyboards/{job_id}.json"


@runtime.actor(PARSE_SCRIPT, max_retries=3)
async def parse_script_stage(job_id: str) -> None:
    async with stage_run(job_id, "parse", PARSE_AT) as run:
        if run is None:
            return
        raw = await storage().get_bytes(run.job["script_key"])
        script = parse_script(raw)
        await storage().put_bytes(
            _parsed_key(job_id),
            json.dumps(script.to_dict()).encode(),
            content_type="application/json",
        )
        await run.log(
            "INFO", f"Script parsed: {len(script.scenes)} scenes", scenes=len(script.scenes)
        )
        # A silent video (narration "none", or every scene [silent]) needs no
        # speech engine: it goes straight on to the storyboard.
        silent = run.job["parameters"].get("narration") == "none" or not any(
            scene.narrated for scene in script.scenes
        )
        _next(BUILD_STORYBOARD if silent else NARRATE_SCRIPT, job_id)


async def _job_assets(run: StageRun, script: Script) -> dict[str, dict[str, Any]]:
    """Every asset the job may use — the request's and the script's own
    references, which must be the job owner's media files — with its kind and
    (for clips) duration."""
    wanted = dict.fromkeys([*(run.job["parameters"].get("asset_types") or {}), *script.asset_ids])
    assets: dict[str, dict[str, Any]] = {}
    async with run.pool.acquire() as conn:
        for asset_id in wanted:
            row = await file_rows.visible_file(
                conn, asset_id, viewer_id=run.job["owner_id"], is_admin=False
            )
            if row is None or row["file_type"] not in ("image", "video", "audio"):
                raise ValidationFailed(
                    f"asset {asset_id} is not one of your image, video or audio files"
                )
            assets[asset_id] = {
                "kind": row["file_type"],
                "duration_s": (row["metadata"] or {}).get("duration"),
            }
    return assets


def _storyboard_assets(storyboard: Storyboard) -> list[str]:
    ids = [s.background.asset_id for s in storyboard.scenes if s.background.asset_id]
    if storyboard.music is not None:
        ids.append(storyboard.music.asset_id)
    return list(dict.fromkeys(ids))


@runtime.actor(BUILD_STORYBOARD, max_retries=3)
async def build_storyboard_stage(job_id: str) -> None:
    async with stage_run(job_id, "storyboard", STORYBOARD_AT) as run:
        if run is None:
            return
        script = Script.from_dict(json.loads(await storage().get_bytes(_parsed_key(job_id))))
        params = run.job["parameters"]
        speech: SpeechPlan | None = None
        if await storage().exists(_speech_key(job_id)):
            speech = SpeechPlan.from_dict(
                json.loads(await storage().get_bytes(_speech_key(job_id)))
            )
        storyboard = await asyncio.to_thread(
            build_storyboard,
            script,
            quality=params.get("quality", "720p"),
            aspect=params.get("aspect", "16:9"),
            target_duration=params.get("duration"),
            style=params.get("style") or None,
            assets=await _job_assets(run, script),
            subtitles=params.get("subtitles", "none"),
            music=params.get("music"),
            speech=speech,
        )
        for warning in storyboard.warnings:
            await run.log("WARNING", warning)
        storyboard = with_plan(storyboard)
        await storage().put_bytes(
            _storyboard_key(job_id),
            json.dumps(storyboard.to_dict()).encode(),
            content_type="application/json",
        )
        summary = storyboard.summary()
        async with run.pool.acquire() as conn, conn.transaction():
            # The first moment the video's length is known, and before any
            # render cost: the day's render quota is checked and taken here.
            await quota_rows.claim_render_seconds(
                conn,
                user_id=run.job["owner_id"],
                job_id=job_id,
                seconds=float(summary["duration_s"]),
                settings=runtime.settings,
            )
            await job_rows.update_job(
                conn, job_id, storyboard_key=_storyboard_key(job_id), storyboard_summary=summary
            )
        # The summary shows in /reports/storyboard-stats (admin-wide scope).
        await invalidate_cache(run.job["owner_id"])
        await run.log(
            "INFO", f"Storyboard: {summary['scenes']} cards, {summary['duration_s']} s", **summary
        )
        _next(RENDER_VIDEO, job_id)


class _RenderWatch:
    """Bridges the render thread and the actor loop: progress out, cancel in."""

    def __init__(self, run: StageRun, loop: asyncio.AbstractEventLoop) -> None:
        self.run = run
        self.loop = loop
        self.cancelled = threading.Event()
        self._last_percent = RENDER_AT

    def on_progress(self, fraction: float) -> None:
        percent = RENDER_AT + int((RENDER_END - RENDER_AT) * fraction)
        if percent > self._last_percent:
            self._last_percent = percent
            asyncio.run_coroutine_threadsafe(self.run.progress(percent), self.loop)

    def should_cancel(self) -> bool:
        return self.cancelled.is_set()

    async def poll_cancel(self) -> None:
        while not self.cancelled.is_set():
            if await self.run.status() != JobStatus.PROCESSING:
                self.cancelled.set()
                return
            await asyncio.sleep(0.3)


@runtime.actor(RENDER_VIDEO, max_retries=3, time_limit=3 * 3600 * 1000)
async def render_video_stage(job_id: str) -> None:
    async with stage_run(job_id, "render", RENDER_AT) as run:
        if run is None:
            return
        storyboard = Storyboard.from_dict(
            json.loads(await storage().get_bytes(_storyboard_key(job_id)))
        )
        if len(storyboard.segments) > 1:  # past the one-pass threshold
            await dispatch_segments(run, storyboard)
            return
        # Checked again on the plan itself: a permanent failure, never an OOM kill.
        check_render_budget(
            [scene.background.asset_id for scene in storyboard.scenes],
            storyboard.width * storyboard.height,
            runtime.settings.render_memory_budget_mb,
            what="storyboard",
        )
        with attempt_dir(runtime.settings, "render", job_id) as work:
            await _render(run, storyboard, work)


async def fetch_assets(run: StageRun, ids: Iterable[str], work: Path) -> dict[str, Path]:
    """Download the given assets (each once) under ``work/assets``: id → local file."""
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


async def fetch_narration(storyboard: Storyboard, work: Path) -> dict[str, Path]:
    """Download the narration clips under ``work/tts``: audio key → local WAV.

    The clips are content-addressed under tts/ (the narrate stage wrote
    them); the same sentence spoken twice is fetched once."""
    paths: dict[str, Path] = {}
    for number, key in enumerate(dict.fromkeys(c.audio_key for c in storyboard.narration)):
        local = work / "tts" / f"clip_{number:05d}.wav"
        local.parent.mkdir(parents=True, exist_ok=True)
        await storage().download_to(key, local)
        paths[key] = local
    return paths


async def _render(run: StageRun, storyboard: Storyboard, work: Path) -> None:
    asset_paths = await fetch_assets(run, _storyboard_assets(storyboard), work)
    narration_paths = await fetch_narration(storyboard, work)
    watch = _RenderWatch(run, asyncio.get_running_loop())
    poller = asyncio.create_task(watch.poll_cancel())
    started = time.monotonic()
    try:
        result = await asyncio.to_thread(
            render_video,
            storyboard,
            work / "out",
            asset_paths=asset_paths,
            narration_paths=narration_paths,
            on_progress=watch.on_progress,
            should_cancel=watch.should_cancel,
            timeout_s=runtime.settings.ffmpeg_timeout_s or None,
            memory_limit_bytes=runtime.settings.ffmpeg_memory_limit_mb * 1024 * 1024 or None,
        )
    finally:
        watch.cancelled.set()
        poller.cancel()
    await store_render_result(run, result, started)


async def store_render_result(
    run: StageRun, result: RenderResult, started: float, *, add_render_seconds: bool = False
) -> None:
    """Store the renditions and captions, record them on the job, hand on.

    ``render_seconds`` becomes the time since ``started``, or (a segmented
    join, ``add_render_seconds``) grows by it: the pieces added theirs."""
    job_id = run.job["id"]
    renditions: dict[str, dict[str, Any]] = {}
    for quality, path in result.renditions.items():
        key = f"videos/{job_id}/{quality}.mp4"
        put = await storage().put_file(key, path, content_type="video/mp4")
        width, height = result.sizes[quality]
        renditions[quality] = {
            "key": key,
            "size": put.size,
            "sha256": put.sha256_hex,
            "width": width,
            "height": height,
        }
    for kind, path in result.subtitle_files.items():
        await storage().put_file(
            f"videos/{job_id}/subtitles.{kind}", path, content_type=CAPTION_TYPES[kind]
        )
    elapsed = time.monotonic() - started
    async with run.pool.acquire() as conn, conn.transaction():
        if add_render_seconds:
            await job_rows.add_render_seconds(conn, job_id, elapsed)
        else:
            await job_rows.update_job(conn, job_id, render_seconds=elapsed)
        await job_rows.update_job(
            conn,
            job_id,
            result={
                "renditions": renditions,
                "primary": next(iter(result.renditions)),
                "duration": round(result.duration_s, 3),
                "poster_time_s": result.poster_time_s,
                "subtitles": sorted(result.subtitle_files),
            },
        )
    await run.log("INFO", f"Rendered {', '.join(renditions)} in {time.monotonic() - started:.1f} s")
    _next(MAKE_THUMBNAILS, job_id)


@runtime.actor(MAKE_THUMBNAILS, max_retries=3)
async def make_video_thumbnails_stage(job_id: str) -> None:
    async with stage_run(job_id, "thumbnails", THUMBNAILS_AT) as run:
        if run is None:
            return
        with attempt_dir(runtime.settings, "thumbnails", job_id) as work:
            await _thumbnails_and_finalize(run, work)


async def _thumbnails_and_finalize(run: StageRun, work: Path) -> None:
    rendered = run.job["result"] or {}
    primary = rendered["renditions"][rendered["primary"]]
    local = work / "video.mp4"
    await storage().download_to(primary["key"], local)
    thumbs = await asyncio.to_thread(
        make_thumbnails, local, "video", work / "thumbs", at_seconds=rendered.get("poster_time_s")
    )
    file_id = run.job["output_file_id"]
    thumbnail_keys = {}
    for size, path in thumbs.items():
        key = f"thumbnails/{file_id}/{size}{path.suffix}"
        await storage().put_file(key, path, content_type="image/jpeg")
        thumbnail_keys[size] = key
    try:
        metadata = await asyncio.to_thread(probe_media, local, "video", "video/mp4")
    except ProbeError as exc:
        raise ValidationFailed(f"the rendered video cannot be read: {exc.reason}") from exc
    # The script describes the video: the tag recommender reads it from here.
    script = await storage().get_bytes(run.job["script_key"])
    metadata["script"] = script.decode("utf-8", "replace")[:SCRIPT_EXCERPT_CHARS]
    await finalize_video(run, rendered, primary, thumbnail_keys, metadata)
    # the media worker embeds the script text for the tag recommender (it holds the
    # sentence model; the render and thumbnail workers never load torch)
    await asyncio.to_thread(_next, EMBED_TEXT, file_id)
    # HLS and seek previews follow on their own queue: the video is already
    # playable (progressive MP4), so the job does not wait for them.
    await asyncio.to_thread(_next, PACKAGE_HLS, file_id)
