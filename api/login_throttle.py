"""Slow down password guessing: failures are counted per username and per address.

Counters live in Redis with the failure window as their expiry.  Past the
limit the login answers 429 with ``Retry-After`` until the window lapses,
whether or not the password is right, so an attacker learns nothing.  When
Redis is down the throttle steps aside (logged) rather than locking everyone
out.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
import redis.exceptions

from t2m.errors import RateLimited
from t2m.redis_client import redis_key
from t2m.settings import Settings

log = logging.getLogger(__name__)


class LoginThrottle:
    def __init__(self, settings: Settings, client: aioredis.Redis) -> None:
        self.settings = settings
        self.client = client

    def _keys(self, username: str, address: str) -> list[str]:
        return [
            redis_key(self.settings, "loginfail", "user", username.lower()),
            redis_key(self.settings, "loginfail", "addr", address),
        ]

    async def check(self, username: str, address: str) -> None:
        try:
            keys = self._keys(username, address)
            counts = await self.client.mget(keys)
            for key, count in zip(keys, counts, strict=True):
                if count is not None and int(count) >= self.settings.login_max_failures:
                    ttl = max(1, int(await self.client.ttl(key)))
                    raise RateLimited(
                        "Too many failed sign-in attempts",
                        f"Try again in {ttl} seconds.",
                        headers={"Retry-After": str(ttl)},
                    )
        except redis.exceptions.RedisError:
            log.warning("login throttle unavailable (Redis)", exc_info=True)

    async def record_failure(self, username: str, address: str) -> None:
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                for key in self._keys(username, address):
                    pipe.incr(key)
                    pipe.expire(key, self.settings.login_failure_window_s, nx=True)
                await pipe.execute()
        except redis.exceptions.RedisError:
            log.warning("login throttle unavailable (Redis)", exc_info=True)

    async def record_success(self, username: str) -> None:
        try:
            await self.client.delete(self._keys(username, "-")[0])
        except redis.exceptions.RedisError:
            log.warning("login throttle unavailable (Redis)", exc_info=True)
