"""The cached reads: file details, file listings and reports.

Each read is one cache key and one computation, shared by the routes of both
API surfaces and by the warming task, so a warmed entry is exactly the one a
request would look up.  What is cached holds no per-request secret: file
views carry plain API paths, never signed links with an expiry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from db import files as file_rows
from db import housekeeping, reports
from db import jobs as job_rows
from t2m.cache import CachedRead, CacheKey, ReadThroughCache
from t2m.cache_generation import GLOBAL_SCOPE
from t2m.errors import NotFound
from t2m.file_views import content_view, file_detail, file_summary
from t2m.ids import is_id
from t2m.pagination import pagination

DEFAULT_WINDOW_HOURS = 24.0
FIRST_PAGE_SIZE = 20


@dataclass(frozen=True)
class Viewer:
    user_id: str
    is_admin: bool

    @property
    def owner_filter(self) -> str | None:
        """Whose rows this viewer sees: all (admins) or their own."""
        return None if self.is_admin else self.user_id

    def key(self, kind: str, args: str = "") -> CacheKey:
        return CacheKey.for_viewer(self.user_id, self.is_admin, kind, args)


def file_not_found(file_id: str) -> NotFound:
    return NotFound(
        "File not found", f"File with ID '{file_id}' does not exist or you don't have access"
    )


FILE_VIEWS: dict[str, Callable[[asyncpg.Record], dict[str, Any]]] = {
    "file": file_detail,  # /api/v1/files/{id}
    "content": content_view,  # /content/{id}
}

# A cached read: its key, and how to compute its value on a miss.
Read = tuple[CacheKey, Callable[[], Awaitable[Any]]]


def file_details(pool: asyncpg.Pool, viewer: Viewer, file_id: str, kind: str = "file") -> Read:
    """One file as ``file`` (/api/v1/files/{id}) or ``content`` (/content/{id})."""
    if not is_id(file_id, "file"):
        raise file_not_found(file_id)  # never a key made of arbitrary input
    view = FILE_VIEWS[kind]

    async def compute() -> dict[str, Any]:
        async with pool.acquire() as conn:
            row = await file_rows.visible_file(
                conn, file_id, viewer_id=viewer.user_id, is_admin=viewer.is_admin
            )
        if row is None:
            raise file_not_found(file_id)
        return view(row)

    return viewer.key(kind, file_id), compute


def file_listing(
    pool: asyncpg.Pool,
    viewer: Viewer,
    *,
    file_type: str | None,
    page: int,
    items_per_page: int,
    kind: str = "files",
) -> Read:
    """A page of files: ``files`` (/api/v1/files) or ``contents`` (/contents)."""

    async def compute() -> dict[str, Any]:
        async with pool.acquire() as conn:
            rows, total = await file_rows.list_files(
                conn,
                owner_id=viewer.owner_filter,
                file_type=file_type,
                limit=items_per_page,
                offset=(page - 1) * items_per_page,
            )
        if kind == "contents":
            return {
                "contents": [content_view(r) for r in rows],
                "total": total,
                "page": page,
                "items_per_page": items_per_page,
            }
        return {
            "items": [file_summary(r) for r in rows],
            "pagination": pagination(page, items_per_page, total),
        }

    return viewer.key(kind, f"{file_type or '-'}:{page}:{items_per_page}"), compute


def video_stats(pool: asyncpg.Pool, viewer: Viewer) -> Read:
    async def compute() -> dict[str, Any]:
        async with pool.acquire() as conn:
            return await reports.video_stats(conn, viewer.owner_filter)

    return viewer.key("video_stats"), compute


def storyboard_stats(pool: asyncpg.Pool) -> Read:
    """Global figures: one entry for everyone, under the admin-wide scope."""

    async def compute() -> dict[str, Any]:
        async with pool.acquire() as conn:
            return await job_rows.storyboard_stats(conn)

    return CacheKey(GLOBAL_SCOPE, "storyboard_stats", ""), compute


def streaming_performance(pool: asyncpg.Pool, viewer: Viewer, hours: float) -> Read:
    async def compute() -> dict[str, Any]:
        async with pool.acquire() as conn:
            return await reports.streaming_performance(conn, viewer.owner_filter, hours)

    return viewer.key("streaming_performance", repr(float(hours))), compute


async def read(cache: ReadThroughCache, cached: Read) -> CachedRead:
    key, compute = cached
    return await cache.read(key, compute)


async def warm(cache: ReadThroughCache, pool: asyncpg.Pool, *, users: int = 50) -> dict[str, Any]:
    """Recompute the reports and first listing pages read most: the admin-wide
    ones and those of the most recently active users.

    Entries are refreshed even when present: the reports cover a moving time
    window, which no write invalidates.
    """
    async with pool.acquire() as conn:
        owners = await housekeeping.recently_active_owners(conn, users)
    reads = [storyboard_stats(pool)]
    for viewer in [Viewer(GLOBAL_SCOPE, True), *(Viewer(o, False) for o in owners)]:
        reads += [
            video_stats(pool, viewer),
            streaming_performance(pool, viewer, DEFAULT_WINDOW_HOURS),
            file_listing(pool, viewer, file_type=None, page=1, items_per_page=FIRST_PAGE_SIZE),
        ]
    stored = 0
    for key, compute in reads:
        stored += await cache.refresh(key, compute)
    return {"users": len(owners), "entries": len(reads), "bytes": stored}
