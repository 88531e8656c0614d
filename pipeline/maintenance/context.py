"""What a maintenance task runs with: resources handed in by its caller.

The worker actor, the CLI and the admin endpoints each own their pool,
storage, broker and Redis client; :func:`build_context` is the one way they
put them together, so a task sees the same context whoever runs it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis

from t2m.enqueue import Enqueuer
from t2m.queues import ActorRef
from t2m.settings import Settings
from t2m.storage import Storage

Send = Callable[[ActorRef, str], Awaitable[str]]


@dataclass
class MaintenanceContext:
    pool: asyncpg.Pool
    settings: Settings
    storage: Storage
    send: Send
    redis: aioredis.Redis | None = None


def build_context(
    settings: Settings,
    *,
    pool: asyncpg.Pool,
    storage: Storage,
    enqueuer: Enqueuer,
    redis: aioredis.Redis | None,
) -> MaintenanceContext:
    return MaintenanceContext(
        pool=pool, settings=settings, storage=storage, send=enqueuer.send, redis=redis
    )
