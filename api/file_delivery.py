"""Choose which stored object answers a download, stream or thumbnail request."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from api.keys import DB_POOL, SETTINGS, STORAGE
from api.serving import Delivery, OnDelivered, serve_object
from db import files as file_rows
from t2m.errors import NotFound, ValidationFailed
from t2m.filenames import content_disposition

THUMBNAIL_SIZES = ("small", "medium", "large")
_QUALITY = re.compile(r"^(auto|original|\d{3,4}p)$")


def _recorder(
    request: web.Request, row: asyncpg.Record, *, kind: str, quality: str, user_id: str | None
) -> OnDelivered:
    pool = request.config_dict[DB_POOL]

    async def record(delivery: Delivery) -> None:
        async with pool.acquire() as conn:
            await file_rows.record_delivery(
                conn, row["id"], bytes_sent=delivery.bytes_sent, kind=kind
            )
            if kind == "stream":
                await file_rows.insert_stream_session(
                    conn,
                    file_id=row["id"],
                    user_id=user_id,
                    quality=quality,
                    range_start=delivery.start,
                    range_end=delivery.end,
                    bytes_sent=delivery.bytes_sent,
                    duration_ms=delivery.duration_ms,
                    completed=delivery.completed,
                )

    return record


async def send_original(
    request: web.Request, row: asyncpg.Record, *, inline: bool, user_id: str | None
) -> web.StreamResponse:
    settings = request.config_dict[SETTINGS]
    return await serve_object(
        request,
        request.config_dict[STORAGE],
        row["storage_key"],
        size=row["size"],
        etag=f'"{row["blob_sha256"]}"',
        last_modified=row["created_at"],
        content_type=row["content_type"],
        content_disposition=content_disposition(row["filename"], inline=inline),
        presign=settings.s3_presign_downloads,
        on_delivered=_recorder(request, row, kind="download", quality="original", user_id=user_id),
    )


def choose_rendition(row: asyncpg.Record, quality: str) -> tuple[str, dict[str, object] | None]:
    """The rendition for ``quality`` (name, entry), falling back to the original."""
    if not _QUALITY.match(quality):
        raise ValidationFailed(
            "Request validation failed",
            {"quality": ["Use auto, original or a rendition such as 720p"]},
        )
    renditions: dict[str, dict[str, object]] = row["renditions"] or {}
    if quality in renditions:
        return quality, renditions[quality]
    return "original", None


async def send_stream(
    request: web.Request, row: asyncpg.Record, *, quality: str, user_id: str | None
) -> web.StreamResponse:
    chosen, rendition = choose_rendition(row, quality)
    storage = request.config_dict[STORAGE]
    if rendition is None:
        key, size, etag = row["storage_key"], row["size"], f'"{row["blob_sha256"]}"'
    else:
        key, size = str(rendition["key"]), int(str(rendition["size"]))
        etag = f'"{row["blob_sha256"]}-{chosen}"'
    return await serve_object(
        request,
        storage,
        key,
        size=size,
        etag=etag,
        last_modified=row["created_at"],
        content_type=row["content_type"],
        content_disposition=content_disposition(row["filename"], inline=True),
        presign=request.config_dict[SETTINGS].s3_presign_downloads,
        on_delivered=_recorder(request, row, kind="stream", quality=chosen, user_id=user_id),
        extra_headers={"X-T2M-Quality": chosen},
    )


async def send_thumbnail(
    request: web.Request, row: asyncpg.Record, size: str
) -> web.StreamResponse:
    if size not in THUMBNAIL_SIZES:
        raise ValidationFailed(
            "Request validation failed", {"size": [f"One of: {', '.join(THUMBNAIL_SIZES)}"]}
        )
    key = (row["thumbnails"] or {}).get(size)
    if key is None:
        state = row["processing_status"]
        raise NotFound(
            "No thumbnail",
            "Thumbnails are still being made"
            if state in ("pending", "processing")
            else f"This {row['file_type']} has no thumbnail",
        )
    storage = request.config_dict[STORAGE]
    info = await storage.stat(key)
    if info is None:
        raise NotFound("No thumbnail", "The thumbnail is missing from storage")
    return await serve_object(
        request,
        storage,
        key,
        size=info.size,
        etag=f'"{info.etag or row["blob_sha256"] + "-" + size}"',
        last_modified=info.modified.astimezone(UTC) if info.modified else datetime.now(UTC),
        content_type="image/jpeg",
        content_disposition=content_disposition(f"{row['id']}-{size}.jpg", inline=True),
    )
