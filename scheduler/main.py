"""The scheduler process (``t2m scheduler``): APScheduler 3 on asyncio.

Every copy runs the same schedule, but a job fires only in the copy holding
the leader lock; the others are hot standbys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import redis.exceptions
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from pipeline.workers.broker import build_broker
from scheduler.jobs import SCHEDULED_JOBS, ScheduledJob
from scheduler.leader import LeaderLock
from t2m.enqueue import Enqueuer
from t2m.queues import RUN_MAINTENANCE
from t2m.redis_client import create_redis, redis_key
from t2m.settings import Settings

log = logging.getLogger(__name__)


async def run_scheduler(settings: Settings) -> None:
    client = create_redis(settings)
    leader = LeaderLock(client, redis_key(settings, "scheduler", "leader"))
    enqueuer = Enqueuer(build_broker(settings))
    is_leader = False

    async def keep_leadership() -> None:
        nonlocal is_leader
        try:
            now_leader = await leader.acquire_or_renew()
        except redis.exceptions.RedisError:
            log.warning("scheduler cannot reach Redis; standing by")
            now_leader = False
        if now_leader != is_leader:
            log.info("scheduler is now %s", "the leader" if now_leader else "a standby")
        is_leader = now_leader

    async def fire(job: ScheduledJob) -> None:
        if is_leader:
            await enqueuer.send(RUN_MAINTENANCE, job.name)
            log.info("enqueued maintenance job %s", job.name)

    scheduler = AsyncIOScheduler()
    scheduler.add_job(keep_leadership, "interval", seconds=leader.lease_ms / 3000, id="leader")
    for job in SCHEDULED_JOBS:
        scheduler.add_job(fire, "interval", seconds=job.interval_s, args=[job], id=job.name)
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
