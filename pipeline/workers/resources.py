"""Per-process resources of a worker, created on first use.

Async actors run on Dramatiq's single event-loop thread, so one asyncpg pool
per process, created lazily on that loop, serves them all.
"""

from __future__ import annotations

import asyncio

import asyncpg

from db.pool import create_pool
from pipeline.workers import runtime
from t2m.job_events import JobEvents
from t2m.redis_client import create_redis
from t2m.storage import Storage, build_storage

_pool: asyncpg.Pool | None = None
_lock = asyncio.Lock()


async def db_pool() -> asyncpg.Pool:
    global _pool
    if _pool is None:
        async with _lock:
            if _pool is None:
                _pool = await create_pool(runtime.settings.database_url, min_size=1, max_size=4)
    return _pool


_storage: Storage | None = None


def storage() -> Storage:
    """The process's storage backend (built on first use, on the actor loop)."""
    global _storage
    if _storage is None:
        _storage = build_storage(runtime.settings)
    return _storage


_job_events: JobEvents | None = None


def job_events() -> JobEvents:
    """The process's publisher of live job events (its Redis client is made
    on first use, on the actor loop; without REDIS_URL it publishes nothing)."""
    global _job_events
    if _job_events is None:
        settings = runtime.settings
        client = create_redis(settings) if settings.redis_url else None
        _job_events = JobEvents(client, settings)
    return _job_events
