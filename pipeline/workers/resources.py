"""Per-process resources of a worker, created on first use.

Async actors run on Dramatiq's single event-loop thread, so one asyncpg pool
per process, created lazily on that loop, serves them all.
"""

from __future__ import annotations

import asyncio

import asyncpg
from redis.asyncio import Redis

from db import housekeeping
from db.pool import create_pool
from pipeline.workers import runtime
from t2m.cache_generation import bump_generations
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


_redis: Redis | None = None


def redis_client() -> Redis | None:
    """The process's Redis client for live events and cache generations
    (made on first use, on the actor loop; None without REDIS_URL)."""
    global _redis
    if _redis is None and runtime.settings.redis_url:
        _redis = create_redis(runtime.settings)
    return _redis


_job_events: JobEvents | None = None


def job_events() -> JobEvents:
    """The process's publisher of live job events (without REDIS_URL it
    publishes nothing)."""
    global _job_events
    if _job_events is None:
        _job_events = JobEvents(redis_client(), runtime.settings)
    return _job_events


async def invalidate_cache(*owner_ids: str | None) -> None:
    """Retire the owners' cached API reads (after the write has committed):
    what a worker finishes must show in the next read of file details,
    listings and reports."""
    await bump_generations(redis_client(), runtime.settings, owner_ids)


async def invalidate_job_cache(pool: asyncpg.Pool, job_id: str) -> None:
    """:func:`invalidate_cache` for the owner of a job known by id."""
    async with pool.acquire() as conn:
        owners = await housekeeping.owners_of_jobs(conn, [job_id])
    await invalidate_cache(*owners)
