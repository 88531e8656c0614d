"""Maintenance tasks, callable directly (CLI, tests) or from the worker actor."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from db import tokens as token_rows

MaintenanceTask = Callable[[asyncpg.Pool], Awaitable[dict[str, Any]]]


async def expire_revoked_tokens(pool: asyncpg.Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        return {"deleted": await token_rows.delete_expired_revocations(conn)}


MAINTENANCE_TASKS: dict[str, MaintenanceTask] = {
    "expire_revoked_tokens": expire_revoked_tokens,
}
