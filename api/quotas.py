"""Per-user quotas as the API applies them: before the cost, race-safe.

- Uploads: :class:`UploadQuota` meters one request.  A Content-Length that
  cannot fit (less :data:`FORM_OVERHEAD`, the multipart headers and text
  fields a body carries beside its files) is refused before a byte is read,
  and that much is reserved up front; the file bytes are then counted as they
  arrive, the reservation growing ahead of them in steps of at most
  :data:`RESERVE_STEP` (and never past the Content-Length), and one file is
  reserved per file part — each decision under the user's row lock
  (``db.quotas.reserve``).  A
  refusal mid-stream raises inside the byte stream the storage backend is
  reading, so the backend aborts and removes the partial object.  Refusals
  are 413 ``QUOTA_EXCEEDED``: waiting frees nothing, deleting files does.
- Jobs: :func:`check_job_quota` runs inside the transaction that records the
  job, under the same row lock, so two submissions cannot both take the last
  slot.  Over the concurrent-jobs quota → 429 with ``Retry-After``; over the
  daily render seconds → 429 with ``Retry-After`` = seconds to the next UTC day.
  The render worker re-checks the planned duration before rendering (the
  storyboard is the first moment the real length is known).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from db import quotas as quota_rows
from t2m.errors import QuotaExceeded
from t2m.ids import new_id
from t2m.settings import Settings

RESERVE_STEP = 8 * 1024 * 1024
FORM_OVERHEAD = 64 * 1024
# A job slot frees when one of the user's jobs ends; there is no telling when,
# so the client is asked to come back after a short while.
JOB_SLOT_RETRY_AFTER_S = 30


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _stored_refusal(used: int, limit: int, wanted: int | None) -> QuotaExceeded:
    extra = f"; this upload needs {human_bytes(wanted)} more" if wanted is not None else ""
    return QuotaExceeded(
        f"Storage quota exceeded: {human_bytes(used)} of {human_bytes(limit)} used{extra}."
        " Delete files to make room.",
        {"quota": "stored_bytes", "used": used, "limit": limit},
    )


def _files_refusal(used: int, limit: int) -> QuotaExceeded:
    return QuotaExceeded(
        f"File quota exceeded: {used} of {limit} files. Delete files to make room.",
        {"quota": "files", "used": used, "limit": limit},
    )


class UploadQuota:
    """The stored-bytes and files quota of one upload request.

    Call :meth:`begin` before reading the body, :meth:`file_started` and
    :meth:`bytes_received` while reading it (``api.files.uploads`` does), and
    :meth:`release` once the file rows are written or the request failed.
    """

    def __init__(self, pool: asyncpg.Pool, settings: Settings, user_id: str) -> None:
        self.pool = pool
        self.settings = settings
        self.user_id = user_id
        self.reservation_id = new_id("qres")
        self.reserved = 0
        self.received = 0
        self.declared: int | None = None  # the Content-Length, when sent

    async def _reserve(self, *, need: int, want: int, files: int) -> quota_rows.Grant:
        async with self.pool.acquire() as conn:
            return await quota_rows.reserve(
                conn,
                reservation_id=self.reservation_id,
                user_id=self.user_id,
                settings=self.settings,
                need_bytes=need,
                want_bytes=want,
                files=files,
            )

    async def begin(self, content_length: int | None) -> None:
        """Refuse a declared body that cannot fit; else reserve what it must hold."""
        self.declared = content_length
        declared = max(0, (content_length or 0) - FORM_OVERHEAD)
        if not declared:
            return
        grant = await self._reserve(need=declared, want=declared, files=0)
        if not grant.ok:
            raise _stored_refusal(grant.used_bytes, grant.limit.stored_bytes, declared)
        self.reserved += grant.granted_bytes

    async def file_started(self) -> None:
        grant = await self._reserve(need=0, want=0, files=1)
        if not grant.ok:
            raise _files_refusal(grant.used_files, grant.limit.files)

    async def bytes_received(self, count: int) -> None:
        self.received += count
        if self.received <= self.reserved:
            return
        need = self.received - self.reserved
        want = RESERVE_STEP
        if self.declared is not None:  # the body cannot bring more than it declared
            want = min(want, self.declared - self.reserved)
        grant = await self._reserve(need=need, want=max(need, want), files=0)
        if not grant.ok:
            raise _stored_refusal(grant.used_bytes, grant.limit.stored_bytes, None)
        self.reserved += grant.granted_bytes

    async def release(self) -> None:
        async with self.pool.acquire() as conn:
            await quota_rows.release(conn, self.reservation_id)


async def check_job_quota(
    conn: asyncpg.Connection,
    settings: Settings,
    user_id: str,
    *,
    target_duration: float | None,
) -> None:
    """Refuse a new job over the concurrent-jobs or daily render quota.

    Call inside the transaction that inserts the job: the user's row stays
    locked until it commits, so parallel submissions are decided one by one.
    """
    row = await quota_rows.lock_user_quota(conn, user_id)
    if row is None:
        return
    limits = quota_rows.limits_of(row, settings)
    live = await quota_rows.live_jobs(conn, user_id)
    if live >= limits.concurrent_jobs:
        raise QuotaExceeded(
            f"You have {live} unfinished jobs; the limit is {limits.concurrent_jobs}."
            " Wait for one to finish (or cancel one) and try again.",
            {"quota": "concurrent_jobs", "used": live, "limit": limits.concurrent_jobs},
            headers={"Retry-After": str(JOB_SLOT_RETRY_AFTER_S)},
            status=429,
        )
    used = await quota_rows.render_seconds_today(conn, user_id)
    limit = limits.render_seconds_per_day
    if used >= limit or (target_duration is not None and used + target_duration > limit):
        wait = quota_rows.seconds_to_next_day()
        raise QuotaExceeded(
            f"Daily render quota reached: {used:.0f} of {limit} seconds of video today (UTC)."
            f" It resets in {wait} s.",
            {"quota": "render_seconds_today", "used": round(used, 3), "limit": limit},
            headers={"Retry-After": str(wait)},
            status=429,
        )


def quota_view(limits: quota_rows.Limits, usage: quota_rows.Usage) -> dict[str, Any]:
    """The ``quota`` object of ``GET /auth/me`` and the admin quota endpoints."""
    return {
        "stored_bytes": {"used": usage.stored_bytes, "limit": limits.stored_bytes},
        "files": {"used": usage.files, "limit": limits.files},
        "render_seconds_today": {
            "used": round(usage.render_seconds_today, 3),
            "limit": limits.render_seconds_per_day,
            "resets_in": quota_rows.seconds_to_next_day(),
        },
        "concurrent_jobs": {"used": usage.concurrent_jobs, "limit": limits.concurrent_jobs},
    }


async def quota_of(pool: asyncpg.Pool, settings: Settings, user_id: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        limits = await quota_rows.limits_for(conn, user_id, settings)
        usage = await quota_rows.usage_of(conn, user_id)
    return quota_view(limits, usage)
