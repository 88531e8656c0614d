"""A Redis read-through cache for hot reads, invalidated by generation counters.

An entry's key names its scope (the viewer's user id, or ``all`` for
admin-wide and global views), its kind, the scope's current generation and
the global epoch, and its arguments::

    {ns}:cache:v:{scope}:{kind}:{epoch}.{generation}:{args}

A write bumps its owners' generations (``t2m.cache_generation``), so every
older entry becomes unreachable at once and expires by its TTL.  One Lua
call reads the generations, the entry and counts the hit or miss: a hit is
one round trip.  The generation is read *before* computing, so a value
computed from rows older than a concurrent write lands under a generation
that write has already retired.

Values are the JSON text of the response data, served as is on a hit.
Hit/miss/set counters live in one Redis hash, shared by every API process
and worker: ``invalidations`` counts what administrators invalidated
(``/system/cache/invalidate``), ``write_invalidations`` the generation bumps
of writes (``t2m.cache_generation``).  Single-flight counters
(``t2m.coalesce``) are per process.
When Redis fails, reads bypass the cache for a few seconds rather than fail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from t2m.cache_generation import (
    EPOCH_SCOPE,
    GLOBAL_SCOPE,
    bump_epoch,
    bump_generations,
    generation_key,
    stats_key,
)
from t2m.coalesce import SingleFlight
from t2m.json_text import dumps_json
from t2m.redis_client import redis_key
from t2m.redis_text import redis_text
from t2m.settings import Settings

log = logging.getLogger(__name__)

# Seconds an entry lives at most; explicit invalidation makes it stale sooner.
DEFAULT_TTL_S: dict[str, int] = {
    "file": 300,
    "files": 300,
    "contents": 300,
    # Reports over a moving time window: their figures age by themselves.
    "video_stats": 60,
    "storyboard_stats": 60,
    "streaming_performance": 60,
}
FALLBACK_TTL_S = 60
# Larger values are served but not stored: one entry must not crowd out many.
MAX_ENTRY_BYTES = 1024 * 1024
BYPASS_AFTER_ERROR_S = 5.0
SCAN_BATCH = 500

# KEYS: scope generation, epoch, stats hash.  ARGV: entry key prefix, suffix, kind.
# The entry key is only known once the generations are read, so the script
# builds it from ARGV and reads a key it was not given in KEYS.  That is fine
# on one Redis server (what T2M uses) but not on Redis Cluster, where every
# key a script touches must be declared and live in one hash slot; a cluster
# deployment would need two round trips (read generations, then the entry).
_LOOKUP = """
local gen = redis.call('get', KEYS[1]) or '0'
local epoch = redis.call('get', KEYS[2]) or '0'
local key = ARGV[1] .. epoch .. '.' .. gen .. ARGV[2]
local value = redis.call('get', key)
local outcome = 'misses'
if value then outcome = 'hits' end
redis.call('hincrby', KEYS[3], outcome, 1)
redis.call('hincrby', KEYS[3], outcome .. ':' .. ARGV[3], 1)
return {key, value}
"""


@dataclass(frozen=True)
class CacheKey:
    scope: str  # a user id, or "all"
    kind: str  # what is cached: "file", "files", "video_stats", ...
    args: str  # what distinguishes entries of one scope and kind

    @staticmethod
    def for_viewer(user_id: str, is_admin: bool, kind: str, args: str) -> CacheKey:
        """Admins share the admin-wide scope: they all see the same rows."""
        return CacheKey(GLOBAL_SCOPE if is_admin else user_id, kind, args)


@dataclass(frozen=True)
class CachedRead:
    json_text: str
    outcome: str  # "hit", "miss", "coalesced" or "bypass"


class ReadThroughCache:
    def __init__(
        self,
        client: aioredis.Redis,
        settings: Settings,
        ttl_s: dict[str, int] | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.ttl_s = {**DEFAULT_TTL_S, **(ttl_s or {})}
        self.flights = SingleFlight()
        self.stats_key = stats_key(settings)
        self.entry_prefix = redis_key(settings, "cache", "v") + ":"
        self._lookup = client.register_script(_LOOKUP)
        self._bypass_until = 0.0
        # Per process: Redis errors cannot be counted in Redis.
        self.errors = 0
        self.bypassed = 0

    # -- reading ------------------------------------------------------------

    async def read(self, key: CacheKey, compute: Callable[[], Awaitable[Any]]) -> CachedRead:
        """The cached JSON text of ``compute()``'s value, computing it on a miss.

        ``compute`` may raise (not found, bad input): nothing is cached then.
        """
        if time.monotonic() < self._bypass_until:
            self.bypassed += 1
            return CachedRead(dumps_json(await compute()), "bypass")
        try:
            full_key, value = await self._lookup(
                keys=[
                    generation_key(self.settings, key.scope),
                    generation_key(self.settings, EPOCH_SCOPE),
                    self.stats_key,
                ],
                args=[f"{self.entry_prefix}{key.scope}:{key.kind}:", f":{key.args}", key.kind],
            )
        except (RedisError, OSError) as exc:
            self._failed("lookup", exc)
            return CachedRead(dumps_json(await compute()), "bypass")
        if value is not None:
            return CachedRead(value, "hit")
        text, started = await self.flights.run(
            full_key, key.kind, lambda: self._fill(full_key, key.kind, compute)
        )
        return CachedRead(text, "miss" if started else "coalesced")

    async def refresh(self, key: CacheKey, compute: Callable[[], Awaitable[Any]]) -> int:
        """Compute and store ``key`` whatever is cached (warming); bytes stored."""
        scope_gen, epoch = await self.client.mget(
            generation_key(self.settings, key.scope), generation_key(self.settings, EPOCH_SCOPE)
        )
        gens = f"{_generation(epoch)}.{_generation(scope_gen)}"
        full_key = f"{self.entry_prefix}{key.scope}:{key.kind}:{gens}:{key.args}"

        text = await self._fill(full_key, key.kind, compute)
        return len(text)

    async def _fill(self, full_key: str, kind: str, compute: Callable[[], Awaitable[Any]]) -> str:
        text = dumps_json(await compute())
        if len(text) > MAX_ENTRY_BYTES:
            return text
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.set(full_key, text, ex=self.ttl_s.get(kind, FALLBACK_TTL_S))
                pipe.hincrby(self.stats_key, "sets", 1)
                pipe.hincrby(self.stats_key, f"sets:{kind}", 1)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed("store", exc)
        return text

    def _failed(self, what: str, exc: BaseException) -> None:
        self.errors += 1
        if time.monotonic() >= self._bypass_until:
            log.warning(
                "cache %s failed, bypassing for %.0f s: %r", what, BYPASS_AFTER_ERROR_S, exc
            )
        self._bypass_until = time.monotonic() + BYPASS_AFTER_ERROR_S

    # -- invalidating -------------------------------------------------------

    async def invalidate_owners(self, *owner_ids: str | None, admin_wide: bool = True) -> bool:
        """Retire the owners' reads and, with ``admin_wide``, the admin-wide and
        global ones (see ``t2m.cache_generation``); False when Redis failed."""
        return await bump_generations(self.client, self.settings, owner_ids, admin_wide=admin_wide)

    async def invalidate_user(self, user_id: str) -> None:
        """An administrator's invalidation of one user's reads (and the
        admin-wide views, which include that user's rows); counted."""
        bumped = await bump_generations(
            self.client, self.settings, [user_id], counter="invalidations"
        )
        if not bumped:
            raise RedisError("cache generations not bumped")

    async def invalidate_all(self) -> int:
        """Every entry of every scope; returns the new epoch."""
        epoch = await bump_epoch(self.client, self.settings)
        await self._count("invalidations", 1)
        return epoch

    async def invalidate_pattern(self, pattern: str, *, limit: int = 100_000) -> dict[str, Any]:
        """Delete entries whose key (after the entry prefix) matches a glob."""
        scanned = 0
        unlinker = _BatchUnlinker(self.client)
        async for key in self.client.scan_iter(self.entry_prefix + pattern, count=SCAN_BATCH):
            scanned += 1
            await unlinker.add(key)
            if scanned >= limit:
                break
        deleted = await unlinker.finish()
        await self._count("invalidations", deleted)
        return {"pattern": pattern, "deleted": deleted, "truncated": scanned >= limit}

    async def _count(self, field: str, amount: int) -> None:
        if amount:
            await self.client.hincrby(self.stats_key, field, amount)

    # -- reporting and pruning ----------------------------------------------

    async def counters(self) -> dict[str, int]:
        raw = await self.client.hgetall(self.stats_key)
        return {str(k): int(v) for k, v in raw.items()}

    async def scan_entries(self, *, prune: bool = False, limit: int = 100_000) -> dict[str, Any]:
        """Count entries by kind and how many are stale (an older generation or
        epoch, unreachable); with ``prune``, delete the stale ones now rather
        than at their TTL."""
        live: dict[str, int] = {}
        unlinker = _BatchUnlinker(self.client)
        current: dict[str, str] = {}
        scanned = stale = 0
        epoch = _generation(await self.client.get(generation_key(self.settings, EPOCH_SCOPE)))
        async for key in self.client.scan_iter(self.entry_prefix + "*", count=SCAN_BATCH):
            scanned += 1
            parsed = _parse_entry(key[len(self.entry_prefix) :])
            if parsed is None:
                continue
            scope, kind, entry_epoch, entry_gen = parsed
            if scope not in current:
                current[scope] = _generation(
                    await self.client.get(generation_key(self.settings, scope))
                )
            if entry_epoch == epoch and entry_gen == current[scope]:
                live[kind] = live.get(kind, 0) + 1
            else:
                stale += 1
                if prune:
                    await unlinker.add(key)
            if scanned >= limit:
                break
        pruned = await unlinker.finish()
        return {
            "scanned": scanned,
            "live_by_kind": live,
            "live": sum(live.values()),
            "stale": stale,
            "pruned": pruned,
            "truncated": scanned >= limit,
            "scopes": len(current),
        }

    def key_layout(self) -> str:
        return f"{self.entry_prefix}{{scope}}:{{kind}}:{{epoch}}.{{generation}}:{{args}}"


def _generation(generation: str | bytes | None) -> str:
    """A generation as stored ("0" when never bumped)."""
    return "0" if generation is None else redis_text(generation)


def _parse_entry(rest: str) -> tuple[str, str, str, str] | None:
    """(scope, kind, epoch, generation) of an entry key without its prefix."""
    parts = rest.split(":", 3)
    if len(parts) < 4:
        return None
    scope, kind, gens, _args = parts
    epoch, _, gen = gens.partition(".")
    return scope, kind, epoch, gen


class _BatchUnlinker:
    """Unlinks keys found by a scan in batches of ``SCAN_BATCH``."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.keys: list[str] = []
        self.deleted = 0

    async def add(self, key: str) -> None:
        self.keys.append(key)
        if len(self.keys) >= SCAN_BATCH:
            await self._unlink()

    async def finish(self) -> int:
        """Unlink what is left; how many keys were deleted in all."""
        if self.keys:
            await self._unlink()
        return self.deleted

    async def _unlink(self) -> None:
        self.deleted += await self.client.unlink(*self.keys)
        self.keys = []
