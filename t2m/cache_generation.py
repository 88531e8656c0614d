"""Cache generations: how a write makes every cached read of its owner unreachable.

Each cached entry's key embeds the current generation of its scope (a user
id, or ``all`` for admin-wide and global views).  A write bumps the
generations of the owners it touched, and ``all`` (but see below): one pipelined
round trip, no key scan, and it works from any process (API, workers,
maintenance) because it only needs Redis.  Entries under older generations
are never read again and expire by their TTL.

Call :func:`bump_generations` *after* the database write has committed: a
reader that computed from the old rows then stored them under a generation
that the bump has already made stale.  Bump right after the commit, before
slower follow-up work (webhook deliveries, events): until the bump, readers
still get the entry from before the write.

Delivery analytics (download/stream counters, stream sessions) are not a
write of the owner's: they bump only the owners' scopes
(``admin_wide=False``).  A video played by range requests writes a batch
every few responses; retiring every admin-wide view and the global reports
each time would leave those entries no chance to be hit, so there the
counters lag by up to the entry's TTL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from t2m.redis_client import redis_key
from t2m.settings import Settings

log = logging.getLogger(__name__)

GLOBAL_SCOPE = "all"
# Bumped only by an explicit "invalidate everything": part of every key.
EPOCH_SCOPE = "*epoch*"
# A generation key outlives every entry made under it (entries live minutes),
# so letting an idle user's counter expire (and restart at 0) is safe.
GENERATION_TTL_S = 30 * 24 * 3600
# Counter (in the stats hash) of generation bumps made by writes; admin
# invalidations through /system/cache/invalidate count as "invalidations".
WRITE_BUMPS = "write_invalidations"


def generation_key(settings: Settings, scope: str) -> str:
    return redis_key(settings, "cache", "gen", scope)


def stats_key(settings: Settings) -> str:
    """The Redis hash of the cache's counters, shared by every process."""
    return redis_key(settings, "cache", "stats")


def scopes_for(owner_ids: Iterable[str | None], *, admin_wide: bool = True) -> list[str]:
    """The scopes a write by/for these owners invalidates (with ``admin_wide``, also ``all``)."""
    owners = {o for o in owner_ids if o}
    return sorted((owners | {GLOBAL_SCOPE}) if admin_wide else owners)


async def bump_generations(
    client: aioredis.Redis | None,
    settings: Settings,
    owner_ids: Iterable[str | None],
    *,
    admin_wide: bool = True,
    counter: str = WRITE_BUMPS,
) -> bool:
    """Invalidate every cached read of these owners and (``admin_wide``) every
    admin-wide and global view; count it once under ``counter``.

    Returns False when Redis could not be told (logged): the cache then
    serves at most one TTL of stale data, and the write itself stands.
    """
    if client is None:
        return False
    scopes = scopes_for(owner_ids, admin_wide=admin_wide)
    if not scopes:
        return True
    try:
        async with client.pipeline(transaction=False) as pipe:
            for scope in scopes:
                key = generation_key(settings, scope)
                pipe.incr(key)
                pipe.expire(key, GENERATION_TTL_S)
            pipe.hincrby(stats_key(settings), counter, 1)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("cache generations of %s not bumped: %r", scopes, exc)
        return False
    return True


async def bump_epoch(client: aioredis.Redis, settings: Settings) -> int:
    """Invalidate every cached entry of every scope at once."""
    return int(await client.incr(generation_key(settings, EPOCH_SCOPE)))
