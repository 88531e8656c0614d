"""The ``media`` queue: metadata and thumbnails for uploaded files, and the text
embedding of every file (uploads here, generated videos by ``embed_file_text``).

The sentence model loads in a background thread as soon as the worker boots, so the
first upload does not pay for it (about 6 s on a small machine).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dramatiq

from db import files as file_rows
from db import quotas as quota_rows
from db import webhooks as webhook_rows
from pipeline.stages.probe import MediaLimits
from pipeline.stages.upload_ladder import encode_ladder
from pipeline.stages.upload_processing import process_local_upload
from pipeline.workers import runtime  # the broker before any actor
from pipeline.workers.notify import public_base_url, send_deliveries
from pipeline.workers.resources import db_pool, invalidate_cache, storage
from recommender.embeddings import EMBEDDING_KEY, TextEmbedder, content_text
from t2m.queues import EMBED_TEXT, PACKAGE_HLS, PROCESS_UPLOAD
from t2m.scratch import attempt_dir

log = logging.getLogger(__name__)

_embedder = TextEmbedder()


def warm_embedder() -> None:
    """Load the sentence model now (the loader's lock makes a request wait for it)."""
    began = time.perf_counter()
    try:
        _embedder.load()
        log.info("sentence model ready in %.1f s", time.perf_counter() - began)
    except Exception:
        log.exception("the sentence model did not load; files are stored without embeddings")


class WarmEmbedder(dramatiq.Middleware):
    """Loads the model in a background thread when a worker process boots."""

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        threading.Thread(target=warm_embedder, name="warm-embedder", daemon=True).start()


runtime.broker.add_middleware(WarmEmbedder())


def _text_embedding(row: Mapping[str, Any]) -> list[float] | None:
    """The file's sentence embedding for the tag recommender, or None (no text, or the
    model is not installed: recommendations then use the hashed text features only)."""
    text = content_text(row)
    if not text.strip():
        return None
    try:
        vector = _embedder.embed([text])[0]
    except Exception:
        log.exception("text embedding failed for %s; stored without one", row["id"])
        return None
    return [round(float(v), 5) for v in vector]


@runtime.actor(PROCESS_UPLOAD, max_retries=5, min_backoff=1000, time_limit=15 * 60 * 1000)
async def process_upload(file_id: str) -> None:
    """Idempotent: a redelivered message redoes the same work into the same keys."""
    pool = await db_pool()
    async with pool.acquire() as conn:
        row = await file_rows.claim_for_processing(conn, file_id)
    if row is None:
        log.info("upload %s is gone; nothing to process", file_id)
        return
    await invalidate_cache(row["owner_id"])  # now "processing"
    store = storage()
    with attempt_dir(runtime.settings, "media", file_id) as scratch:
        local = scratch / "original"
        await store.download_to(row["storage_key"], local)
        # Decoding media is CPU work: keep the actor loop free for other messages.
        result = await asyncio.to_thread(
            process_local_upload,
            local,
            file_type=row["file_type"],
            mime=row["content_type"],
            work_dir=scratch / "thumbs",
            limits=MediaLimits.from_settings(runtime.settings),
        )
        # computed here, never in the web process; stored with the file's metadata
        embedding = await asyncio.to_thread(_text_embedding, row)
        if embedding is not None:
            result.metadata[EMBEDDING_KEY] = embedding
        thumbnail_keys = {}
        for size, path in result.thumbnails.items():
            key = f"thumbnails/{file_id}/{size}{path.suffix}"
            await store.put_file(key, path, content_type="image/jpeg")
            thumbnail_keys[size] = key
        renditions: dict[str, dict[str, Any]] = {}
        if (
            row["file_type"] == "video"
            and result.status == "completed"
            and await _room_for_ladder(pool, row)
        ):
            renditions = await _ladder(file_id, local, result.metadata, scratch / "ladder")
    async with pool.acquire() as conn, conn.transaction():
        await file_rows.finish_processing(
            conn,
            file_id,
            status=result.status,
            metadata=result.metadata,
            thumbnails=thumbnail_keys,
            error=result.error,
        )
        if renditions:
            await file_rows.set_renditions(conn, file_id, renditions)
        # file.processed / file.failed, once per file however often this runs.
        deliveries = await webhook_rows.emit_file_event(
            conn, file_id, public_base_url=public_base_url()
        )
    await invalidate_cache(row["owner_id"])  # metadata, thumbnails, final status
    await send_deliveries(deliveries)
    if row["file_type"] == "video" and result.status == "completed":
        runtime.enqueuer().send_now(PACKAGE_HLS, file_id)
    log.info("processed upload %s: %s", file_id, result.status)


async def _room_for_ladder(pool: Any, row: Mapping[str, Any]) -> bool:
    """The rungs below an upload take at most about its own size: they are made
    only while the owner's stored-bytes quota has that much room left."""
    async with pool.acquire() as conn:
        limits = await quota_rows.limits_for(conn, row["owner_id"], runtime.settings)
        used, _files = await quota_rows.stored_usage(conn, row["owner_id"])
    return bool(used + int(row["size"]) <= limits.stored_bytes)


async def _ladder(
    file_id: str, local: Path, metadata: Mapping[str, Any], work: Path
) -> dict[str, dict[str, Any]]:
    """Encode and store the renditions below the upload's own height."""
    width, height = int(metadata.get("width") or 0), int(metadata.get("height") or 0)
    if not width or not height:
        return {}
    settings = runtime.settings
    made = await asyncio.to_thread(
        encode_ladder,
        local,
        work,
        width=width,
        height=height,
        duration_s=float(metadata.get("duration") or 0),
        timeout_s=settings.ffmpeg_timeout_s or None,
        memory_limit_bytes=settings.ffmpeg_memory_limit_mb * 1024 * 1024 or None,
    )
    renditions: dict[str, dict[str, Any]] = {}
    for quality, (path, rung_width, rung_height) in made.items():
        key = f"videos/{file_id}/{quality}.mp4"
        put = await storage().put_file(key, path, content_type="video/mp4")
        renditions[quality] = {
            "key": key,
            "size": put.size,
            "sha256": put.sha256_hex,
            "width": rung_width,
            "height": rung_height,
        }
    return renditions


@runtime.actor(EMBED_TEXT, max_retries=3, min_backoff=1000, time_limit=5 * 60 * 1000)
async def embed_file_text(file_id: str) -> None:
    """Embed a generated video's text (title, description, script excerpt) into its
    metadata. Idempotent; a file deleted meanwhile is skipped."""
    pool = await db_pool()
    async with pool.acquire() as conn:
        row = await file_rows.file_by_id(conn, file_id)
    if row is None:
        return
    embedding = await asyncio.to_thread(_text_embedding, row)
    if embedding is None:
        return
    async with pool.acquire() as conn:
        owner = await file_rows.set_metadata_key(conn, file_id, EMBEDDING_KEY, embedding)
    if owner is not None:
        await invalidate_cache(owner)
        log.info("embedded the text of %s", file_id)
