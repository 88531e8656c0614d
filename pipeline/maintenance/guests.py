"""Retiring guest users of guest mode (``ALLOW_ANONYMOUS``) nobody uses any more.

Only rows guest mode made are looked at (``db.users.stale_guests``: a
``guest_address``, no password, no external identity, a ``guest-`` name).
Their files are soft-deleted, so ``purge_deleted`` removes the bytes after its
grace period exactly as for a user's own deletion; the guest row goes once
nothing of it is left.  A guest with an unfinished job is left alone.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from db import files as file_rows
from db import users as user_rows
from pipeline.maintenance.context import MaintenanceContext

GUEST_REAP_BATCH = 1000


async def reap_guests(pool: asyncpg.Pool, max_age_days: float) -> dict[str, Any]:
    hidden = 0
    removed: list[str] = []
    async with pool.acquire() as conn:
        stale = await user_rows.stale_guests(
            conn, max_age_s=max_age_days * 86400, limit=GUEST_REAP_BATCH
        )
        for user_id in stale:
            async with conn.transaction():
                for file_id in await file_rows.live_file_ids(conn, user_id):
                    hidden += await file_rows.soft_delete_file(conn, file_id)
                if await user_rows.delete_empty_guest(conn, user_id):
                    removed.append(user_id)
    return {"max_age_days": max_age_days, "files_deleted": hidden, "guests_removed": removed}


async def reap_guests_task(
    ctx: MaintenanceContext, max_age_days: float | None = None
) -> dict[str, Any]:
    days = ctx.settings.guest_max_age_days if max_age_days is None else max_age_days
    return await reap_guests(ctx.pool, days)
