"""Worker heartbeats are read in one place by health, queue status and the reaper."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from t2m.redis_client import redis_key
from t2m.settings import Settings
from t2m.worker_heartbeats import read_heartbeats


def _beat(pid: int, queues: list[str]) -> str:
    return json.dumps({"host": "test", "pid": pid, "queues": queues, "beat_at": 1.0, "active": []})


async def test_unreadable_heartbeats_are_left_out_everywhere(
    client: Any, settings: Settings, make_user: Any
) -> None:
    admin = await make_user("ADMIN")  # the worker list is for administrators
    redis = Redis.from_url(settings.redis_url)
    try:
        await redis.set(redis_key(settings, "workers", "test:1"), _beat(1, ["parse"]), ex=30)
        await redis.set(redis_key(settings, "workers", "test:2"), _beat(2, ["render"]), ex=30)
        # A half-written or foreign value must not hide the live workers.
        await redis.set(redis_key(settings, "workers", "test:3"), "{not json", ex=30)
        await redis.set(redis_key(settings, "workers", "test:4"), "[1, 2]", ex=30)
        # Not a heartbeat key at all.
        await redis.set(redis_key(settings, "workersx"), _beat(5, ["media"]), ex=30)

        beats = await read_heartbeats(redis, settings)
        assert sorted(b["pid"] for b in beats) == [1, 2]

        response = await client.get("/api/v1/system/health", headers=admin.headers)
        body = await response.json()
        workers = body["data"]["components"]["workers"]
        assert workers["alive"] == 2, workers
        assert sorted(w["pid"] for w in workers["workers"]) == [1, 2]
    finally:
        await redis.aclose()
