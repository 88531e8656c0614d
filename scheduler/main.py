"""The scheduler process (``t2m scheduler``): APScheduler 3 on asyncio.

Every copy runs the same schedule, but a job fires only in the copy holding
the leader lock; the others are hot standbys.

Time is cut into *slots* per job: slot ``n`` of a job with interval ``i``
starts at ``n * i`` seconds after the epoch, the same in every copy.  A
firing claims its slot in Redis (``SET NX``) before enqueueing, and the
worker records the slot with the run, so a slot runs at most once even when
two copies both believe they lead (a leader stalled past its lease while the
standby took over).  A copy that becomes leader fires the current slot of
every job at once: a slot the dead leader had not fired yet still runs, and
one it had fired is refused by its claim.  A claim whose enqueue fails is
given back and the leader tries again on its next leadership tick, so a
broker hiccup does not silently lose the slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import redis.asyncio as aioredis
import redis.exceptions
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from scheduler.jobs import SCHEDULED_JOBS, ScheduledJob
from scheduler.leader import LeaderLock
from t2m.broker import build_broker
from t2m.enqueue import Enqueuer
from t2m.queues import RUN_MAINTENANCE
from t2m.redis_client import create_redis, redis_key
from t2m.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_LEASE_MS = 30_000


def slot_of(now: float, interval_s: float) -> int:
    return int(now // interval_s)


async def claim_slot(
    client: aioredis.Redis, settings: Settings, job: ScheduledJob, slot: int
) -> bool:
    """True for the one caller that may run this slot of this job."""
    key = redis_key(settings, "scheduler", "slot", job.name, str(slot))
    # Kept for a few intervals: long past any copy that could still fire it.
    ttl_s = max(60, int(job.interval_s * 3))
    return bool(await client.set(key, str(time.time()), nx=True, ex=ttl_s))


async def release_slot(
    client: aioredis.Redis, settings: Settings, job: ScheduledJob, slot: int
) -> None:
    """Give back a slot this copy claimed but could not enqueue.

    No other copy can hold the key: ours was set NX and outlives any send by
    far (its TTL is at least a minute), so a plain DEL frees only our claim.
    """
    await client.delete(redis_key(settings, "scheduler", "slot", job.name, str(slot)))


async def enqueue_slot(
    client: aioredis.Redis, settings: Settings, enqueuer: Enqueuer, job: ScheduledJob, slot: int
) -> bool | None:
    """Claim and enqueue one slot: True when sent, False when another copy
    has it, None when the send failed (the claim is given back, so a later
    tick of this copy or the standby taking over can still run the slot)."""
    try:
        if not await claim_slot(client, settings, job, slot):
            return False  # another copy ran this slot
    except redis.exceptions.RedisError as exc:
        log.warning("maintenance job %s (slot %d) not claimed: %r", job.name, slot, exc)
        return None
    try:
        await enqueuer.send(RUN_MAINTENANCE, job.name, slot)
    except Exception as exc:  # a broker error of any kind: the slot must not be lost
        log.warning("maintenance job %s (slot %d) not enqueued: %r", job.name, slot, exc)
        try:
            await release_slot(client, settings, job, slot)
        except redis.exceptions.RedisError:
            # Redis is down too: the claim lapses with its TTL.
            log.warning("claim of %s slot %d not released", job.name, slot)
        return None
    log.info("enqueued maintenance job %s for slot %d", job.name, slot)
    return True


async def run_scheduler(
    settings: Settings,
    jobs: Sequence[ScheduledJob] = SCHEDULED_JOBS,
    *,
    lease_ms: int = DEFAULT_LEASE_MS,
) -> None:
    client = create_redis(settings)
    leader = LeaderLock(client, redis_key(settings, "scheduler", "leader"), lease_ms=lease_ms)
    enqueuer = Enqueuer(build_broker(settings))
    is_leader = False
    # Jobs whose last firing was not enqueued: fired again on each leadership
    # tick (a few per lease) instead of a whole interval later.  A retry runs
    # the slot it happens in, which is the failed one unless that has passed.
    unsent: set[str] = set()

    async def fire(job: ScheduledJob) -> None:
        if not is_leader:
            return
        slot = slot_of(time.time(), job.interval_s)
        if await enqueue_slot(client, settings, enqueuer, job, slot) is None:
            unsent.add(job.name)
        else:
            unsent.discard(job.name)

    async def keep_leadership() -> None:
        nonlocal is_leader
        try:
            now_leader = await leader.acquire_or_renew()
        except redis.exceptions.RedisError:
            log.warning("scheduler cannot reach Redis; standing by")
            now_leader = False
        if now_leader != is_leader:
            log.info("scheduler is now %s", "the leader" if now_leader else "a standby")
        is_leader, took_over = now_leader, now_leader and not is_leader
        if took_over:
            for job in jobs:
                await fire(job)
        elif is_leader:
            for job in jobs:
                if job.name in unsent:
                    await fire(job)

    scheduler = AsyncIOScheduler()
    scheduler.add_job(keep_leadership, "interval", seconds=lease_ms / 3000, id="leader")
    now = time.time()
    for job in jobs:
        # Fire on slot boundaries; a late wake-up (a busy loop) still fires,
        # and claims the slot it wakes in.
        first = (slot_of(now, job.interval_s) + 1) * job.interval_s
        trigger = IntervalTrigger(
            seconds=job.interval_s, start_date=datetime.fromtimestamp(first, UTC)
        )
        scheduler.add_job(
            fire,
            trigger,
            args=[job],
            id=job.name,
            misfire_grace_time=max(1, int(job.interval_s)),
            coalesce=True,
        )
    await keep_leadership()
    scheduler.start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    scheduler.shutdown(wait=False)
    with contextlib.suppress(redis.exceptions.RedisError):
        await leader.release()
    await client.aclose()
