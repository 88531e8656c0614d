"""Serve stored bytes over HTTP: conditional requests, single byte ranges, sendfile.

One path for both storage backends: the local backend's files go out with
``sendfile`` (no copy through Python), S3 objects are streamed range by range
or, when configured, answered with a redirect to a presigned URL.

Every user file is someone else's content served from the API's origin, so
each response says ``X-Content-Type-Options: nosniff`` (a browser must not
guess ``text/html`` from bytes labelled otherwise), and types a browser
executes (HTML, SVG, XML, JavaScript...) never render inline: they go out as
attachments with a ``sandbox`` Content-Security-Policy, so even a browser
that ignores the disposition runs no script with the API's cookies/origin.
This lives here, the one function every download/stream/thumbnail/signed-link
path goes through, so no route can forget it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from io import FileIO

from aiohttp import web

from t2m.errors import NotFound, RangeNotSatisfiable, StorageError
from t2m.storage import Storage

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
SEND_CHUNK = 1024 * 1024

# Types a browser renders as a document or runs as script.
_ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/xsl",
        "application/xslt+xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "text/ecmascript",
        "application/wasm",
        "text/cache-manifest",
        "multipart/x-mixed-replace",
        "application/x-shockwave-flash",
    }
)
SANDBOX_POLICY = "sandbox; default-src 'none'"


def is_active_content(content_type: str) -> bool:
    """True for media types a browser would execute or render as a page.

    Any ``+xml`` type counts (XML documents can carry XHTML and script), and
    so does a type that does not parse: unknown means untrusted.
    """
    media = content_type.split(";", 1)[0].strip().lower()
    if not re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", media):
        return True
    return media in _ACTIVE_TYPES or media.endswith("+xml")


# Names a browser or the desktop treats as a page or script whatever the
# stored type says (stored types of text uploads are text/plain today, but a
# name is what a user double-clicks).
_ACTIVE_EXTENSIONS = frozenset(
    {"html", "htm", "xhtml", "xht", "shtml", "svg", "svgz", "xml", "xsl", "xslt", "js", "mjs"}
)


def is_active_filename(filename: str | None) -> bool:
    """True when the file's name says HTML, SVG, XML or JavaScript."""
    name = (filename or "").strip().rstrip(".").lower()
    return "." in name and name.rsplit(".", 1)[1] in _ACTIVE_EXTENSIONS


def as_attachment(content_disposition: str) -> str:
    """The same disposition (file names kept) as ``attachment``."""
    kind, sep, rest = content_disposition.partition(";")
    return "attachment" + sep + rest if kind.strip().lower() == "inline" else content_disposition


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
    active: bool = False,
) -> web.StreamResponse:
    """Send ``key``; ``active`` (or an active ``content_type``) forces an
    attachment under a sandbox policy whatever ``content_disposition`` says."""
    active = active or is_active_content(content_type)
    if active:
        content_disposition = as_attachment(content_disposition)
    extra = extra_headers or {}
    headers = {
        **extra,
        "ETag": etag,
        "Last-Modified": format_datetime(last_modified.astimezone(UTC), usegmt=True),
        "Accept-Ranges": "bytes",
        # Immutable objects (HLS segments) say so; everything else revalidates.
        "Cache-Control": extra.get("Cache-Control", "private, max-age=0, must-revalidate"),
        "X-Content-Type-Options": "nosniff",
    }
    if active:
        headers["Content-Security-Policy"] = SANDBOX_POLICY
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
    count = end - start + 1
    response = web.StreamResponse(status=206 if byte_range else 200, headers=headers)
    response.content_type = content_type
    response.headers["Content-Disposition"] = content_disposition
    response.content_length = count
    if byte_range:
        response.headers["Content-Range"] = f"bytes {start}-{end}/{size}"

    with _open_local(storage, key, end + 1, request.method != "HEAD" and count > 0) as handle:
        started = time.perf_counter()
        sent = 0
        completed = False
        try:
            await response.prepare(request)
            if request.method != "HEAD" and count > 0:
                sent_by_sendfile = None
                if handle is not None:
                    try:
                        sent_by_sendfile = await _sendfile(request, handle, start, count)
                    finally:
                        # asyncio leaves the position after the last byte sent,
                        # even when the client went away mid-way.
                        sent = max(0, handle.tell() - start)
                if sent_by_sendfile is None:
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
                duration_ms = (time.perf_counter() - started) * 1000
                # Analytics must not be lost to a cancelled request, nor delay it:
                # the callback only queues them.
                on_delivered(Delivery(start, end, sent, duration_ms, completed))
    return response


@contextlib.contextmanager
def _open_local(storage: Storage, key: str, needed: int, wanted: bool) -> Iterator[FileIO | None]:
    """The object's file for sendfile, opened before the response starts.

    A missing or short file is then an error answer, not a 200 whose body
    stops short (leaving the client waiting for the announced length).
    """
    path = storage.local_path(key) if wanted else None
    if path is None:
        yield None
        return
    try:
        handle = open(path, "rb", buffering=0)  # noqa: SIM115 (closed by the with below)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise NotFound("Stored object not found") from exc
    except OSError as exc:
        raise StorageError(f"Storage I/O error: cannot read {key}") from exc
    with handle:
        if os.fstat(handle.fileno()).st_size < needed:
            raise StorageError(f"Stored object {key} is shorter than its record")
        yield handle


async def _sendfile(request: web.Request, handle: FileIO, offset: int, count: int) -> int | None:
    """Bytes sent by sendfile; ``None`` if the event loop has none (uvloop)."""
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("client disconnected")
    try:
        return await asyncio.get_running_loop().sendfile(transport, handle, offset, count)
    except NotImplementedError:
        return None
