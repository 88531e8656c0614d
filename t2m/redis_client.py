"""Redis clients and the namespaced key scheme shared by every process."""

from __future__ import annotations

import redis.asyncio as aioredis

from t2m.settings import Settings


def create_redis(settings: Settings) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        # A dead Redis must fail a request fast (503), never hang it.
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
    )


def redis_key(settings: Settings, *parts: str) -> str:
    return ":".join((settings.redis_namespace, *parts))


def worker_heartbeat_pattern(settings: Settings) -> str:
    return redis_key(settings, "workers", "*")
