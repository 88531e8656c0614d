"""One acting scheduler at a time: a Redis lock with a lease.

The leader renews the lease well before it lapses; a standby copy keeps
trying and takes over within one lease when the leader dies.
"""

from __future__ import annotations

import os
import secrets
import socket

import redis.asyncio as aioredis

# Renew only if we still own the lock (compare-and-expire).
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class LeaderLock:
    def __init__(self, client: aioredis.Redis, key: str, lease_ms: int = 30_000) -> None:
        self.client = client
        self.key = key
        self.lease_ms = lease_ms
        # Says who leads (host:pid), unique per copy all the same.
        self.token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"

    async def acquire_or_renew(self) -> bool:
        if await self.client.eval(_RENEW, 1, self.key, self.token, self.lease_ms):
            return True
        return bool(await self.client.set(self.key, self.token, px=self.lease_ms, nx=True))

    async def release(self) -> None:
        await self.client.eval(_RELEASE, 1, self.key, self.token)
