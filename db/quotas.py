"""Per-user quotas: limits, usage, and race-safe reservations.

Limits are the user's override columns, NULL meaning the deployment default
(``QUOTA_*`` settings).  Usage is always computed from the rows themselves —
``files`` for stored bytes and file count, ``jobs`` for concurrent jobs and the
day's render seconds — so there is no counter to drift out of step.

Checks that must hold under concurrency (two uploads, two job submissions at
once) first take :func:`lock_user_quota`, a row lock on the user, and decide and
record in the same transaction; every quota decision of one user is thereby
serialised, and different users never wait for each other.  ``FOR NO KEY
UPDATE`` is used rather than ``FOR UPDATE`` so the lock does not block inserts
of rows that reference the user (their foreign key takes ``FOR KEY SHARE``).

Uploads reserve before they cost: an upload holds a ``quota_reservations`` row
that grows ahead of the bytes it streams and is deleted once the file rows are
written (counted twice for a moment, never zero times).  A reservation not
extended for :data:`RESERVATION_STALE_AFTER` belongs to a request that died
with its process; it no longer counts and is deleted by that user's next
reservation.  Stored bytes are the sizes of the user's own files, whatever
other users store: deduplication stays invisible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from db.sql import changed_one_row
from t2m import job_status as statuses
from t2m.errors import QuotaExceeded
from t2m.settings import Settings

RESERVATION_STALE_AFTER = timedelta(hours=1)
_STALE = f"interval '{int(RESERVATION_STALE_AFTER.total_seconds())} seconds'"

OVERRIDE_COLUMNS = {
    "stored_bytes": "quota_stored_bytes",
    "files": "quota_files",
    "render_seconds_per_day": "quota_render_seconds_per_day",
    "concurrent_jobs": "quota_concurrent_jobs",
}
LIVE_STATUSES = statuses.LIVE


@dataclass(frozen=True)
class Limits:
    stored_bytes: int
    files: int
    render_seconds_per_day: int
    concurrent_jobs: int


@dataclass(frozen=True)
class Usage:
    stored_bytes: int
    files: int
    render_seconds_today: float
    concurrent_jobs: int


def day_start(now: datetime | None = None) -> datetime:
    """Midnight UTC of ``now``'s day: render seconds count per UTC day."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def seconds_to_next_day(now: datetime | None = None) -> int:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return max(1, int((day_start(moment) + timedelta(days=1) - moment).total_seconds()) + 1)


def limits_of(row: asyncpg.Record | dict[str, Any], settings: Settings) -> Limits:
    def pick(column: str, default: int) -> int:
        value = row[column]
        return default if value is None else int(value)

    return Limits(
        stored_bytes=pick("quota_stored_bytes", settings.quota_stored_bytes),
        files=pick("quota_files", settings.quota_files),
        render_seconds_per_day=pick(
            "quota_render_seconds_per_day", settings.quota_render_seconds_per_day
        ),
        concurrent_jobs=pick("quota_concurrent_jobs", settings.quota_concurrent_jobs),
    )


async def quota_row(conn: asyncpg.Connection, user_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, quota_stored_bytes, quota_files, quota_render_seconds_per_day,"
        " quota_concurrent_jobs FROM users WHERE id = $1",
        user_id,
    )


async def lock_user_quota(conn: asyncpg.Connection, user_id: str) -> asyncpg.Record | None:
    """Lock the user's row until the transaction ends and return its quota columns.

    A guest's quota is shared by every guest of its client address (see
    :func:`quota_owners`), so their decisions are serialised by a lock on the
    address too."""
    row = await conn.fetchrow(
        "SELECT id, quota_stored_bytes, quota_files, quota_render_seconds_per_day,"
        " quota_concurrent_jobs, guest_address FROM users WHERE id = $1 FOR NO KEY UPDATE",
        user_id,
    )
    if row is not None and row["guest_address"] is not None:
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('t2m-guest-quota:' || $1))",
            row["guest_address"],
        )
    return row


async def quota_owners(conn: asyncpg.Connection, user_id: str) -> list[str]:
    """The accounts whose use counts against the user's quota: the user alone,
    or for a guest every guest created from the same client address — a client
    that drops its guest cookie starts a new guest, not a new quota."""
    owners: list[str] | None = await conn.fetchval(
        "SELECT array_agg(id) FROM users WHERE id = $1"
        " OR guest_address = (SELECT guest_address FROM users WHERE id = $1)",
        user_id,
    )
    return owners or [user_id]


async def limits_for(conn: asyncpg.Connection, user_id: str, settings: Settings) -> Limits:
    row = await quota_row(conn, user_id)
    if row is None:
        return limits_of(dict.fromkeys(OVERRIDE_COLUMNS.values()), settings)
    return limits_of(row, settings)


async def stored_usage(conn: asyncpg.Connection, user_id: str) -> tuple[int, int]:
    """(bytes, files) of the user's live files."""
    row = await conn.fetchrow(
        "SELECT coalesce(sum(size), 0)::bigint AS bytes, count(*) AS files"
        " FROM files WHERE owner_id = ANY($1::text[]) AND deleted_at IS NULL",
        await quota_owners(conn, user_id),
    )
    assert row is not None
    return int(row["bytes"]), int(row["files"])


async def render_seconds_today(
    conn: asyncpg.Connection, user_id: str, *, exclude_job: str | None = None
) -> float:
    """Seconds of video planned today (UTC) by the user's jobs submitted today.

    Every planned job counts, deleted, failed or cancelled ones too: their
    render capacity was taken when they were planned.
    """
    value: Any = await conn.fetchval(
        "SELECT coalesce(sum((storyboard_summary->>'duration_s')::float), 0) FROM jobs"
        " WHERE owner_id = ANY($1::text[]) AND created_at >= $2"
        " AND storyboard_summary IS NOT NULL AND ($3::text IS NULL OR id <> $3)",
        await quota_owners(conn, user_id),
        day_start(),
        exclude_job,
    )
    return float(value)


async def live_jobs(conn: asyncpg.Connection, user_id: str) -> int:
    value: Any = await conn.fetchval(
        "SELECT count(*) FROM jobs WHERE owner_id = ANY($1::text[])"
        " AND status = ANY($2::text[]) AND deleted_at IS NULL",
        await quota_owners(conn, user_id),
        list(LIVE_STATUSES),
    )
    return int(value)


async def usage_of(conn: asyncpg.Connection, user_id: str) -> Usage:
    stored, files = await stored_usage(conn, user_id)
    return Usage(
        stored_bytes=stored,
        files=files,
        render_seconds_today=await render_seconds_today(conn, user_id),
        concurrent_jobs=await live_jobs(conn, user_id),
    )


async def set_overrides(
    conn: asyncpg.Connection, user_id: str, overrides: dict[str, int | None]
) -> bool:
    """Set (or, with None, clear) the named overrides; False when no such user."""
    if not overrides:
        return await quota_row(conn, user_id) is not None
    assignments = ", ".join(
        f"{OVERRIDE_COLUMNS[name]} = ${i}" for i, name in enumerate(overrides, start=2)
    )
    return await changed_one_row(
        conn,
        f"UPDATE users SET {assignments}, updated_at = now() WHERE id = $1",
        user_id,
        *overrides.values(),
    )


@dataclass(frozen=True)
class Grant:
    """The outcome of a reservation attempt; on refusal ``ok`` is False, nothing
    was reserved, and ``refused`` names the quota (``stored_bytes``/``files``)."""

    ok: bool
    refused: str | None
    granted_bytes: int
    granted_files: int
    used_bytes: int
    used_files: int
    limit: Limits


async def reserve(
    conn: asyncpg.Connection,
    *,
    reservation_id: str,
    user_id: str,
    settings: Settings,
    need_bytes: int,
    want_bytes: int,
    files: int,
) -> Grant:
    """Grow the reservation by at least ``need_bytes`` (up to ``want_bytes`` when
    there is room) and by ``files``; refused when even ``need_bytes`` and ``files``
    do not fit.  Use, others' reservations and this one are read under the
    user's row lock, so two requests never both get the last free space."""
    async with conn.transaction():
        row = await lock_user_quota(conn, user_id)
        if row is None:  # the account was deleted meanwhile
            row = dict.fromkeys(("id", *OVERRIDE_COLUMNS.values()), 0)
        limits = limits_of(row, settings)
        await conn.execute(
            f"DELETE FROM quota_reservations WHERE user_id = $1 AND updated_at < now() - {_STALE}",
            user_id,
        )
        stored, stored_files = await stored_usage(conn, user_id)
        held = await conn.fetchrow(
            "SELECT coalesce(sum(bytes), 0)::bigint AS bytes,"
            " coalesce(sum(files), 0)::bigint AS files"
            " FROM quota_reservations WHERE user_id = ANY($1::text[])",
            await quota_owners(conn, user_id),
        )
        assert held is not None
        used_bytes = stored + int(held["bytes"])
        used_files = stored_files + int(held["files"])
        free_bytes = limits.stored_bytes - used_bytes
        if used_files + files > limits.files:
            return Grant(False, "files", 0, 0, used_bytes, used_files, limits)
        if need_bytes > free_bytes:
            return Grant(False, "stored_bytes", 0, 0, used_bytes, used_files, limits)
        # As much of the wish as is free: of two uploads racing for the last
        # room, one gets it whole (sharing it could leave both short).
        granted = max(need_bytes, min(want_bytes, free_bytes))
        await conn.execute(
            """
            INSERT INTO quota_reservations (id, user_id, bytes, files) VALUES ($1, $2, $3, $4)
            ON CONFLICT (id) DO UPDATE
                SET bytes = quota_reservations.bytes + EXCLUDED.bytes,
                    files = quota_reservations.files + EXCLUDED.files,
                    updated_at = now()
            """,
            reservation_id,
            user_id,
            granted,
            files,
        )
        return Grant(True, None, granted, files, used_bytes, used_files, limits)


async def release(conn: asyncpg.Connection, reservation_id: str) -> None:
    await conn.execute("DELETE FROM quota_reservations WHERE id = $1", reservation_id)


async def claim_render_seconds(
    conn: asyncpg.Connection, *, user_id: str, job_id: str, seconds: float, settings: Settings
) -> None:
    """Refuse (permanently) a planned video that would take the owner past the
    day's render seconds.  Call in the transaction that records the job's
    storyboard summary: the row lock makes parallel plans count one by one,
    and the recorded summary is what later checks sum."""
    row = await lock_user_quota(conn, user_id)
    if row is None:
        return
    limit = limits_of(row, settings).render_seconds_per_day
    used = await render_seconds_today(conn, user_id, exclude_job=job_id)
    if used + seconds > limit:
        raise QuotaExceeded(
            f"the video would last {seconds:.0f} s and {used:.0f} of your {limit} render"
            " seconds of today (UTC) are used; the daily render quota allows no more",
            {"quota": "render_seconds_today", "used": round(used, 3), "limit": limit},
        )
