"""The ``package`` queue: a video's HLS tree and seek previews.

Sent after a rendered video is finalised and after an uploaded video is
processed, with the file id.  The tree is built in scratch space and copied
to ``hls/{file_id}/`` media first, playlists after and the master playlist
last, so a reader that finds the master finds everything it names; a
redelivered message rebuilds the same names.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from db import files as file_rows
from pipeline.stages.hls_package import can_stream_copy, content_type, package_hls
from pipeline.stages.seek_previews import make_storyboard
from pipeline.workers import runtime  # the broker before any actor
from pipeline.workers.package_record import record_package
from pipeline.workers.resources import db_pool, invalidate_cache, storage
from t2m.hls_links import hls_facts
from t2m.queues import PACKAGE_HLS
from t2m.scratch import attempt_dir

log = logging.getLogger(__name__)


def hls_prefix(file_id: str) -> str:
    return f"hls/{file_id}/"


@runtime.actor(PACKAGE_HLS, max_retries=3, time_limit=3600 * 1000)
async def package_hls_stage(file_id: str) -> None:
    pool = await db_pool()
    async with pool.acquire() as conn:
        row = await file_rows.file_by_id(conn, file_id)
    if row is None or row["file_type"] != "video":
        log.info("file %s is gone or not a video; nothing to package", file_id)
        return
    with attempt_dir(runtime.settings, "package", file_id) as work:
        facts = await package_file(row, work)
    if not facts:
        return
    async with pool.acquire() as conn:
        owner = await record_package(conn, row, facts)
    # The file detail and the job result now list the tree's URLs.
    await invalidate_cache(owner)
    if owner is None:
        # Deleted while being packaged: the delete removed the tree before this
        # one was written, and signed segments are served by HMAC alone.
        store = storage()
        for key in [info.key async for info in store.list(hls_prefix(file_id))]:
            await store.delete(key)


async def package_file(row: Any, work: Path) -> dict[str, Any]:
    """Package ``row``'s renditions (and an H.264 original) into storage; the
    package's facts (see ``t2m.hls_links``), empty when there was nothing to package."""
    store = storage()
    file_id = row["id"]
    started = time.monotonic()
    sources: dict[str, Path] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for quality, entry in (row["renditions"] or {}).items():
        local = work / "src" / f"{quality}.mp4"
        local.parent.mkdir(parents=True, exist_ok=True)
        await store.download_to(entry["key"], local)
        sources[quality] = local
        sizes[quality] = (int(entry.get("width") or 0), int(entry.get("height") or 0))
    if row["source"] != "generated":
        # An upload: its own bytes are the top rung when they can be copied.
        local = work / "src" / "original"
        local.parent.mkdir(parents=True, exist_ok=True)
        await store.download_to(row["storage_key"], local)
        if await asyncio.to_thread(can_stream_copy, local):
            sources["original"] = local
            facts = row["metadata"] or {}
            sizes["original"] = (int(facts.get("width") or 0), int(facts.get("height") or 0))
    if not sources:
        log.info("file %s has nothing H.264 to package", file_id)
        return {}
    subtitles = None
    if row["job_id"] and await store.exists(f"videos/{row['job_id']}/subtitles.vtt"):
        subtitles = work / "subtitles.vtt"
        await store.download_to(f"videos/{row['job_id']}/subtitles.vtt", subtitles)
    out = work / "hls"
    result = await asyncio.to_thread(
        package_hls,
        sources,
        out,
        subtitles_vtt=subtitles,
        timeout_s=runtime.settings.ffmpeg_timeout_s or None,
    )
    best = max(result.variants, key=lambda v: v.height)
    await asyncio.to_thread(
        make_storyboard,
        sources[best.quality],
        out,
        duration_s=result.duration_s,
        width=best.width,
        height=best.height,
    )
    prefix = hls_prefix(file_id)
    for path in result.files():  # media, then playlists, the master last
        name = path.relative_to(out).as_posix()
        await store.put_file(prefix + name, path, content_type=content_type(name))
    elapsed = time.monotonic() - started
    log.info("packaged %s: %s in %.1f s", file_id, ", ".join(sources), elapsed)
    return hls_facts(
        [v.quality for v in result.variants],
        subtitles=result.has_subtitles,
        storyboard=(out / "storyboard.vtt").is_file(),
    )
