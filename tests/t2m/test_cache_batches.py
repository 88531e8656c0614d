"""Pattern invalidation deletes across several unlink batches, on a real Redis."""

from __future__ import annotations

import asyncpg

from t2m.cache import SCAN_BATCH, ReadThroughCache
from t2m.redis_client import create_redis
from t2m.settings import Settings


async def test_invalidate_pattern_deletes_more_keys_than_one_batch(
    db: asyncpg.Pool, settings: Settings
) -> None:
    # ``db`` empties the test's Redis namespace afterwards.
    redis = create_redis(settings)
    try:
        cache = ReadThroughCache(redis, settings)
        count = SCAN_BATCH * 2 + 7
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(count):
                pipe.set(f"{cache.entry_prefix}batch:{i}", "x")
            pipe.set(f"{cache.entry_prefix}other:1", "x")
            await pipe.execute()
        result = await cache.invalidate_pattern("batch:*")
        assert result == {"pattern": "batch:*", "deleted": count, "truncated": False}
        assert await redis.exists(f"{cache.entry_prefix}other:1") == 1
        assert [k async for k in redis.scan_iter(f"{cache.entry_prefix}batch:*")] == []
    finally:
        await redis.aclose()
