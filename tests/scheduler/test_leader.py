"""Only one scheduler copy acts at a time; a standby takes over a lapsed lease."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from scheduler.leader import LeaderLock
from t2m.redis_client import redis_key


async def test_one_leader_and_takeover(settings, db):
    client = Redis.from_url(settings.redis_url)
    key = redis_key(settings, "scheduler", "leader")
    first = LeaderLock(client, key, lease_ms=300)
    second = LeaderLock(client, key, lease_ms=300)
    try:
        results = await asyncio.gather(first.acquire_or_renew(), second.acquire_or_renew())
        assert sorted(results) == [False, True]
        leader, standby = (first, second) if results[0] else (second, first)
        assert await leader.acquire_or_renew() is True  # renewal keeps it
        assert await standby.acquire_or_renew() is False
        await asyncio.sleep(0.4)  # the leader died: its lease lapses
        assert await standby.acquire_or_renew() is True
        assert await leader.acquire_or_renew() is False
        await leader.release()  # releasing someone else's lock does nothing
        assert await standby.acquire_or_renew() is True
    finally:
        await client.aclose()
