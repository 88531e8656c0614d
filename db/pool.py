"""asyncpg pool creation with JSON codecs registered on every connection."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Rows carry JSON documents (metadata, parameters, results); decode them to
    # Python values once here instead of at every call site.
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name,
            encoder=lambda value: json.dumps(value, separators=(",", ":"), default=str),
            decoder=json.loads,
            schema="pg_catalog",
        )


async def keep_session(conn: asyncpg.Connection) -> None:
    """A pool ``reset`` that skips asyncpg's default reset query (``RESET ALL``,
    ``UNLISTEN *``, ``pg_advisory_unlock_all()`` …), a round trip on every
    release.  Only for pools whose users leave no session state behind — no
    ``SET``, no ``LISTEN``, only transaction-scoped advisory locks — as the
    API's request handlers.  asyncpg still rolls back a transaction left open
    before calling this."""


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, **kwargs: Any
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        # A restarted server leaves dead connections in the pool; asyncpg
        # replaces them on the next acquire once they are released.
        max_inactive_connection_lifetime=60,
        command_timeout=30,
        **kwargs,
    )
    assert pool is not None
    return pool
