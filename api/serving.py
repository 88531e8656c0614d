"""Serve stored bytes over HTTP: conditional requests, single byte ranges, sendfile.

One path for both storage backends: the local backend's files go out with
``sendfile`` (no copy through Python), S3 objects are streamed range by range
or, when configured, answered with a redirect to a presigned URL.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from aiohttp import web

from t2m.errors import RangeNotSatisfiable
from t2m.storage import Storage

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
SEND_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Delivery:
    """What one response sent, for analytics."""

    start: int
    end: int
    bytes_sent: int
    duration_ms: float
    completed: bool


# Called once a response ends, however it ends; must not block.
OnDelivered = Callable[[Delivery], None]


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range asked for, or None for the whole object.

    A multi-range request is answered whole (RFC 9110 lets servers ignore
    Range); a malformed or unsatisfiable single range is a 416.
    """
    if header is None:
        return None
    header = header.strip()
    if "," in header and header.startswith("bytes="):
        return None
    match = _RANGE.match(header)
    if match is None or match.group(1) == match.group(2) == "":
        raise RangeNotSatisfiable(
            "Malformed Range header; expected 'bytes=START-END', 'bytes=START-' or 'bytes=-N'",
            headers={"Content-Range": f"bytes */{size}"},
        )
    first, last = match.group(1), match.group(2)
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(
                "Empty suffix range", headers={"Content-Range": f"bytes */{size}"}
            )
        return max(0, size - suffix), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or (last != "" and int(last) < start):
        raise RangeNotSatisfiable(
            f"Range {header[6:]} is outside the {size}-byte content",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end


def _not_modified(request: web.Request, etag: str, last_modified: datetime) -> bool:
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or etag in tags
    since = request.headers.get("If-Modified-Since")
    if since:
        try:
            return last_modified.replace(microsecond=0) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


def _range_applies(request: web.Request, etag: str, last_modified: datetime) -> bool:
    if_range = request.headers.get("If-Range")
    if if_range is None:
        return True
    if if_range.startswith('"'):
        return if_range == etag
    try:
        return last_modified.replace(microsecond=0) <= parsedate_to_datetime(if_range)
    except (TypeError, ValueError):
        return False


async def serve_object(
    request: web.Request,
    storage: Storage,
    key: str,
    *,
    size: int,
    etag: str,
    last_modified: datetime,
    content_type: str,
    content_disposition: str,
    presign: bool = False,
    on_delivered: OnDelivered | None = None,
    extra_headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    headers = {
        **(extra_headers or {}),
        "ETag": etag,
        "Last-Modified": format_datetime(last_modified.astimezone(UTC), usegmt=True),
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=0, must-revalidate",
    }
    if _not_modified(request, etag, last_modified):
        return web.Response(status=304, headers=headers)

    if presign:
        url = await storage.presigned_get_url(
            key,
            300,
            filename=None,
            inline=content_disposition.startswith("inline"),
            content_type=content_type,
        )
        if url is not None:
            raise web.HTTPFound(url)

    byte_range = (
        parse_range(request.headers.get("Range"), size)
        if _range_applies(request, etag, last_modified)
        else None
    )
    start, end = byte_range if byte_range is not None else (0, size - 1)
    response = web.StreamResponse(status=206 if byte_range else 200, headers=headers)
    response.content_type = content_type
    response.headers["Content-Disposition"] = content_disposition
    response.content_length = end - start + 1
    if byte_range:
        response.headers["Content-Range"] = f"bytes {start}-{end}/{size}"

    started = time.perf_counter()
    sent = 0
    completed = False
    try:
        await response.prepare(request)
        if request.method != "HEAD" and end >= start:
            local = storage.local_path(key)
            if local is not None:
                sent = await _sendfile(request, local, start, end - start + 1)
            else:
                async for chunk in storage.iter_range(key, start, end, chunk_size=SEND_CHUNK):
                    await response.write(chunk)
                    sent += len(chunk)
        await response.write_eof()
        completed = True
    except (ConnectionResetError, asyncio.CancelledError):
        # The client went away (a seeking player does this all the time).
        raise
    finally:
        if on_delivered is not None:
            delivery = Delivery(start, end, sent, (time.perf_counter() - started) * 1000, completed)
            # Analytics must not be lost to a cancelled request, nor delay it:
            # the callback only queues them.
            on_delivered(delivery)
    return response


async def _sendfile(request: web.Request, path: Path, offset: int, count: int) -> int:
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("client disconnected")
    loop = asyncio.get_running_loop()
    with open(path, "rb") as handle:  # noqa: ASYNC230 (open is instant; sendfile is async)
        try:
            return await loop.sendfile(transport, handle, offset, count)
        except NotImplementedError:
            # TLS transports cannot sendfile; copy in chunks instead.
            handle.seek(offset)
            remaining = count
            while remaining > 0:
                chunk = await asyncio.to_thread(handle.read, min(SEND_CHUNK, remaining))
                if not chunk:
                    break
                transport.write(chunk)
                remaining -= len(chunk)
            return count - remaining
