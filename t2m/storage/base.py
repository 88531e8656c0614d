"""The storage interface shared by the local-directory and S3 backends.

Keys are ``/``-separated strings whose first part is one of :data:`SEGMENTS`
(``uploads/ab/abcdef…``, ``videos/job_1/final.mp4``).  Every write is
all-or-nothing: an object is either absent or complete, whatever happens to
the stream feeding it (size limit, exception, cancellation on client
disconnect).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from t2m.errors import RangeNotSatisfiable

SEGMENTS: tuple[str, ...] = (
    "uploads",
    "scripts",
    "tts",  # synthesized speech, content-addressed (narrate stage; read by render)
    "storyboards",
    "segments",  # rendered video segments, content-addressed (render; read by assemble)
    "videos",
    "hls",  # packaged HLS trees and seek previews, one prefix per file (package stage)
    "thumbnails",
    "logs",
    "archive",
    "tmp",
    "models",
)

# Local backend writes in-progress objects next to their final name with this
# prefix; such names are never valid keys, so they can never be listed or read.
TEMP_PREFIX = ".t2m-part-"

MAX_KEY_BYTES = 1024  # S3's limit
DEFAULT_CHUNK_SIZE = 256 * 1024

_FORBIDDEN_IN_KEY = re.compile(r"[\x00-\x1f\x7f\\]")


@dataclass(frozen=True, slots=True)
class PutResult:
    """What was stored: byte count and hex sha256 of the content."""

    size: int
    sha256_hex: str


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime  # timezone-aware UTC
    etag: str | None  # opaque validator, *without* surrounding quotes


def validate_key(key: str) -> str:
    """Return ``key`` if it is a well-formed object key, else raise ``ValueError``.

    Keys are produced by the service, never taken verbatim from users, so a bad
    key is a programming error (``ValueError``), not a client error.
    """
    if not isinstance(key, str) or not key:
        raise ValueError("storage key must be a non-empty string")
    if _FORBIDDEN_IN_KEY.search(key):
        raise ValueError(f"storage key contains a control character or backslash: {key!r}")
    if key.startswith("/"):
        raise ValueError(f"storage key must be relative: {key!r}")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"storage key longer than {MAX_KEY_BYTES} bytes")
    parts = key.split("/")
    if len(parts) < 2:
        raise ValueError(f"storage key must be '<segment>/<name>': {key!r}")
    if parts[0] not in SEGMENTS:
        raise ValueError(f"storage key segment {parts[0]!r} is not one of {', '.join(SEGMENTS)}")
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError(f"storage key has an empty, '.' or '..' part: {key!r}")
    if parts[-1].startswith(TEMP_PREFIX):
        raise ValueError(f"storage key uses the reserved prefix {TEMP_PREFIX!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """Validate a listing prefix: ``''``, ``'videos/'``, ``'uploads/ab'`` …"""
    if not isinstance(prefix, str):
        raise ValueError("storage prefix must be a string")
    if not prefix:
        return prefix
    if _FORBIDDEN_IN_KEY.search(prefix) or prefix.startswith("/"):
        raise ValueError(f"invalid storage prefix: {prefix!r}")
    parts = prefix.split("/")
    if any(part in (".", "..") for part in parts) or any(p == "" for p in parts[:-1]):
        raise ValueError(f"invalid storage prefix: {prefix!r}")
    if len(parts) > 1 and parts[0] not in SEGMENTS:
        raise ValueError(f"storage prefix segment {parts[0]!r} is not one of {', '.join(SEGMENTS)}")
    return prefix


def segment_of(key: str) -> str:
    return key.split("/", 1)[0]


def check_range(size: int, start: int, end_inclusive: int | None) -> int:
    """Clamp an inclusive byte range to an object of ``size`` bytes; return the end.

    ``end_inclusive=None`` or past the end means "to the last byte" (as in HTTP).
    A range starting beyond the object raises :class:`RangeNotSatisfiable`
    (with the ``Content-Range: bytes */size`` header a 416 answer needs).
    An empty object with ``start=0`` gives the empty range (returns -1).
    """
    if start < 0 or (end_inclusive is not None and end_inclusive < start):
        raise ValueError(f"invalid byte range {start}-{end_inclusive}")
    if size == 0 and start == 0:
        return -1
    if start >= size:
        raise RangeNotSatisfiable(
            f"Range starts at {start} but the object has {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    last = size - 1
    return last if end_inclusive is None else min(end_inclusive, last)


async def single_chunk(data: bytes) -> AsyncGenerator[bytes, None]:
    yield data


class Storage(ABC):
    """Async object storage.  One instance per process and event loop.

    Missing objects: ``get_bytes``, ``download_to``, ``iter_range`` and ``move``
    raise :class:`t2m.errors.NotFound`; ``stat`` returns ``None``; ``delete`` is a
    no-op.  Backend failures raise :class:`t2m.errors.StorageError`.
    """

    backend_name: str = ""

    # -- writing ----------------------------------------------------------
    @abstractmethod
    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
        content_type: str | None = None,
    ) -> PutResult:
        """Store the concatenated ``chunks`` under ``key``, replacing any object.

        Exceeding ``max_bytes`` raises :class:`t2m.errors.PayloadTooLarge`.  On any
        exception (including cancellation) nothing is left behind and a previous
        object under ``key`` is untouched.
        """

    async def put_bytes(
        self, key: str, data: bytes, *, content_type: str | None = None
    ) -> PutResult:
        return await self.put_stream(key, single_chunk(data), content_type=content_type)

    @abstractmethod
    async def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> PutResult:
        """Upload a local file (workers publishing renders, thumbnails)."""

    # -- reading ----------------------------------------------------------
    @abstractmethod
    async def get_bytes(self, key: str) -> bytes:
        """Whole object in memory: only for small objects (scripts, storyboards)."""

    @abstractmethod
    async def download_to(self, key: str, path: Path) -> int:
        """Copy the object to a local file (atomically replaced); return its size."""

    @abstractmethod
    def iter_range(
        self,
        key: str,
        start: int = 0,
        end_inclusive: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncGenerator[bytes, None]:
        """Stream bytes ``start..end_inclusive`` (clamped to the object's end).

        An async generator: ``NotFound`` / ``RangeNotSatisfiable`` surface on the
        first iteration, so HTTP handlers ``stat`` first (they need the size for
        ``Content-Range`` anyway).  Chunks are at most ``chunk_size`` bytes.  Call
        ``aclose()`` when stopping early (client gone) to release the file or
        connection at once.
        """

    @abstractmethod
    async def stat(self, key: str) -> ObjectInfo | None: ...

    async def exists(self, key: str) -> bool:
        return await self.stat(key) is not None

    @abstractmethod
    def list(self, prefix: str = "") -> AsyncGenerator[ObjectInfo, None]:
        """Objects whose key starts with ``prefix``, in lexicographic key order."""

    def local_path(self, key: str) -> Path | None:
        """Filesystem path of the object (for sendfile), ``None`` if not on disk.

        Does not check that the object exists.
        """
        return None

    async def presigned_get_url(
        self,
        key: str,
        expires_s: int,
        *,
        filename: str | None = None,
        inline: bool = False,
        content_type: str | None = None,
    ) -> str | None:
        """A URL the client can GET directly, or ``None`` if the backend has none."""
        return None

    # -- changing ---------------------------------------------------------
    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing object is not an error."""

    @abstractmethod
    async def move(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst`` (replacing ``dst``); ``src`` must exist."""

    # -- administration ---------------------------------------------------
    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Backend name and configuration, never secrets."""

    async def usage_by_segment(self) -> dict[str, dict[str, int]]:
        """``{segment: {"objects": n, "bytes": b}}`` for every known segment."""
        usage = {segment: {"objects": 0, "bytes": 0} for segment in SEGMENTS}
        async for info in self.list(""):
            bucket = usage.setdefault(segment_of(info.key), {"objects": 0, "bytes": 0})
            bucket["objects"] += 1
            bucket["bytes"] += info.size
        return usage

    async def reap_partial_writes(self, older_than: datetime) -> tuple[str, ...]:
        """Remove half-written objects a crashed writer left, older than the cutoff.

        Such leftovers are invisible to :meth:`list`, so only the backend can
        find them; returns what it removed.  Backends without them do nothing.
        """
        return ()

    @abstractmethod
    async def health(self) -> None:
        """Raise :class:`t2m.errors.StorageError` if the backend cannot be used."""

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "SEGMENTS",
    "TEMP_PREFIX",
    "ObjectInfo",
    "PutResult",
    "Storage",
    "check_range",
    "segment_of",
    "validate_key",
    "validate_prefix",
]
