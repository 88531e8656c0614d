"""Maintenance tasks, callable directly (CLI, tests) or from the worker actor."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from db import files as file_rows
from db import tokens as token_rows
from db import users as user_rows
from db import webhooks as webhook_rows
from pipeline.stages.operations import OPERATIONS_TASKS, MaintenanceContext, Task


async def expire_revoked_tokens(pool: asyncpg.Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return {"deleted": await token_rows.delete_expired_revocations(conn)}


GUEST_REAP_BATCH = 1000


async def reap_guests(pool: asyncpg.Pool, max_age_days: float) -> dict[str, Any]:
    """Retire guest users (``ALLOW_ANONYMOUS``) unused for ``max_age_days``.

    Only rows guest mode made are looked at (``db.users.stale_guests``).  Their
    files are soft-deleted, so ``purge_deleted`` removes the bytes after its
    grace period exactly as for a user's own deletion; the guest row goes once
    nothing of it is left.  A guest with an unfinished job is left alone."""
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


# A pending webhook delivery overdue by this much, with no attempt in flight,
# has lost its message (worker crash, Redis outage at enqueue time).
WEBHOOK_SWEEP_GRACE_S = 60.0
WEBHOOK_SWEEP_BATCH = 1000
DeliverySender = Callable[[Sequence[str]], Awaitable[None]]


async def requeue_webhook_deliveries(
    pool: asyncpg.Pool, send: DeliverySender | None = None
) -> dict[str, Any]:
    """Enqueue again the due webhook deliveries whose message was lost."""
    async with pool.acquire() as conn:
        due = await webhook_rows.due_deliveries(
            conn, grace_s=WEBHOOK_SWEEP_GRACE_S, limit=WEBHOOK_SWEEP_BATCH
        )
    if due:
        if send is None:
            # Imported here: it binds the worker's broker, which a stage must
            # not need to be imported or tested.
            from pipeline.workers.notify import send_deliveries

            send = send_deliveries
        await send(due)
    return {"requeued": len(due)}


async def _expire_revoked_tokens(ctx: MaintenanceContext) -> dict[str, Any]:
    return await expire_revoked_tokens(ctx.pool)


async def _reap_guests(
    ctx: MaintenanceContext, max_age_days: float | None = None
) -> dict[str, Any]:
    days = ctx.settings.guest_max_age_days if max_age_days is None else max_age_days
    return await reap_guests(ctx.pool, days)


async def _requeue_webhook_deliveries(ctx: MaintenanceContext) -> dict[str, Any]:
    return await requeue_webhook_deliveries(ctx.pool)


# Every task by name; each takes a MaintenanceContext and keyword parameters
# (run them through pipeline.stages.operations.run_task to record the run).
MAINTENANCE_TASKS: dict[str, Task] = {
    "expire_revoked_tokens": _expire_revoked_tokens,
    "requeue_webhook_deliveries": _requeue_webhook_deliveries,
    "reap_guests": _reap_guests,
    **OPERATIONS_TASKS,
}
