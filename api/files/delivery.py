"""Choose which stored object answers a download, stream or thumbnail request.

Each download or stream response is counted on its file row (and a stream
also gets a ``stream_sessions`` row).  Those writes are batched: a response
only queues them, and one background task per database pool writes whatever
has queued, counters then sessions, each in one transaction.  Written one
response at a time they cost a pool connection, three round trips (with the
reset on release) and two commits per response, and a busy file's UPDATEs
queued on its row lock while holding the pool connections requests need.
Nothing waits on a timer: a lone response is written at once, and responses
served meanwhile form the next batch.  The task is an ``api.background`` task,
which the app waits for on shutdown while the pool is still open, so queued
rows are not lost.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from api import background
from api.cache.glue import CACHE
from api.keys import DB_POOL, SETTINGS, STORAGE
from api.serving import Delivery, OnDelivered, is_active_filename, serve_object
from db import files as file_rows
from t2m.cache import ReadThroughCache
from t2m.errors import NotFound, ValidationFailed
from t2m.filenames import content_disposition

log = logging.getLogger(__name__)

THUMBNAIL_SIZES = ("small", "medium", "large")
_QUALITY = re.compile(r"^(auto|original|\d{3,4}p)$")
# Responses per transaction: bounds how long a batch holds its files' row locks.
_MAX_BATCH = 1000
# Responses waiting to be written.  Past this the database cannot keep up and
# the oldest are dropped (and counted in the log): analytics must not grow the
# API's memory without bound or hold up its shutdown.
_MAX_PENDING = 50_000


@dataclass(frozen=True, slots=True)
class _Served:
    file_id: str
    kind: str  # "download" or "stream"
    quality: str
    user_id: str | None
    delivery: Delivery
    owner_id: str | None = None  # whose cached reads (not admin-wide) the counts retire


async def _count(conn: asyncpg.Connection, batch: list[_Served]) -> None:
    # One UPDATE per file however many responses it served, files in id order
    # so that concurrent batches (other API processes) cannot deadlock.
    totals: dict[str, list[int]] = {}
    for served in batch:
        downloads_streams_bytes = totals.setdefault(served.file_id, [0, 0, 0])
        downloads_streams_bytes[0 if served.kind == "download" else 1] += 1
        downloads_streams_bytes[2] += served.delivery.bytes_sent
    await file_rows.record_deliveries(
        conn,
        [(file_id, *totals[file_id]) for file_id in sorted(totals)],  # type: ignore[misc]
    )


async def _add_sessions(conn: asyncpg.Connection, batch: list[_Served]) -> None:
    await file_rows.insert_stream_sessions(
        conn,
        [
            (
                s.file_id,
                s.user_id,
                s.quality,
                s.delivery.start,
                s.delivery.end,
                s.delivery.bytes_sent,
                s.delivery.duration_ms,
                s.delivery.completed,
            )
            for s in batch
            if s.kind == "stream"
        ],
    )


async def _write_together(
    conn: asyncpg.Connection,
    batch: list[_Served],
    write: Callable[[asyncpg.Connection, list[_Served]], Awaitable[None]],
) -> None:
    try:
        async with conn.transaction():
            await write(conn, batch)
    except asyncpg.PostgresError:
        # A row that cannot be written (its file deleted meanwhile) must not
        # take the rest of the batch with it: write them one by one.
        for served in batch:
            try:
                await write(conn, [served])
            except asyncpg.PostgresError as exc:
                log.warning("analytics of file %s not recorded: %s", served.file_id, exc)


async def _record_batch(conn: asyncpg.Connection, batch: list[_Served]) -> None:
    # Counters first, then sessions: as when each response was written on its
    # own, a stream session is never visible before its file's counters.
    await _write_together(conn, batch, _count)
    await _write_together(conn, batch, _add_sessions)


class _DeliveryLog:
    """Analytics rows queued for one pool, and the task writing them."""

    def __init__(self, pool: asyncpg.Pool, cache: ReadThroughCache) -> None:
        self.pool = pool
        self.cache = cache
        self.queue: deque[_Served] = deque()
        self.dropped = 0

    async def run(self) -> None:
        try:
            while self.queue:
                batch: list[_Served] = []
                try:
                    async with self.pool.acquire() as conn:
                        while self.queue:
                            batch = [
                                self.queue.popleft()
                                for _ in range(min(_MAX_BATCH, len(self.queue)))
                            ]
                            await _record_batch(conn, batch)
                            # Counters and sessions show in the owners' cached
                            # file details and reports.  Not a write of the
                            # owner's, and a played video sends a batch every
                            # few range requests: admin-wide and global entries
                            # are left to age by their TTL, or they would
                            # never be hit while anything plays.
                            await self.cache.invalidate_owners(
                                *{s.owner_id for s in batch}, admin_wide=False
                            )
                            batch = []
                except (OSError, asyncpg.InterfaceError, asyncpg.PostgresError) as exc:
                    if batch:  # its connection failed; the rest gets another one
                        log.warning("%d deliveries not recorded: %r", len(batch), exc)
                    else:  # no connection to be had
                        log.warning("%d deliveries not recorded: %r", len(self.queue), exc)
                        self.queue.clear()
        finally:
            # No await since the queue was last seen empty: nothing is left behind.
            if _logs.get(self.pool) is self:
                del _logs[self.pool]


_logs: dict[asyncpg.Pool, _DeliveryLog] = {}


def _queue(pool: asyncpg.Pool, cache: ReadThroughCache, served: _Served) -> None:
    delivery_log = _logs.get(pool)
    if delivery_log is None:
        delivery_log = _logs[pool] = _DeliveryLog(pool, cache)
        background.spawn(delivery_log.run())
    if len(delivery_log.queue) >= _MAX_PENDING:
        delivery_log.queue.popleft()
        delivery_log.dropped += 1
        if delivery_log.dropped % 1000 == 1:
            log.warning("analytics behind: %d responses not recorded so far", delivery_log.dropped)
    delivery_log.queue.append(served)


def _recorder(
    request: web.Request, row: asyncpg.Record, *, kind: str, quality: str, user_id: str | None
) -> OnDelivered:
    pool, cache = request.config_dict[DB_POOL], request.config_dict[CACHE]
    file_id, owner_id = row["id"], row["owner_id"]

    def record(delivery: Delivery) -> None:
        _queue(pool, cache, _Served(file_id, kind, quality, user_id, delivery, owner_id))

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
        active=is_active_filename(row["filename"]),
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
        active=is_active_filename(row["filename"]),
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
