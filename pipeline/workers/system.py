"""Housekeeping actors on the ``maintenance`` queue."""

from __future__ import annotations

import logging
import time

import redis

from pipeline.maintenance.context import build_context
from pipeline.maintenance.registry import MAINTENANCE_TASKS, run_task
from pipeline.workers import runtime
from pipeline.workers.resources import db_pool, storage
from t2m.enqueue import Enqueuer
from t2m.queues import PING, RUN_MAINTENANCE
from t2m.redis_client import create_redis, redis_key

log = logging.getLogger(__name__)


@runtime.actor(PING, max_retries=0)
def ping(nonce: str) -> None:
    """Record that a worker took a message; used by health checks and tests."""
    client = redis.Redis.from_url(runtime.settings.redis_url, socket_timeout=2)
    client.set(redis_key(runtime.settings, "pong", nonce), str(time.time()), ex=300)


@runtime.actor(RUN_MAINTENANCE, max_retries=3)
async def run_maintenance(task_name: str, slot: int | None = None) -> None:
    """``slot``: the schedule slot a scheduler claimed for this run (recorded)."""
    if task_name not in MAINTENANCE_TASKS:
        log.error("unknown maintenance task %r; dropped", task_name)
        return
    settings = runtime.settings
    client = create_redis(settings) if settings.redis_url else None
    ctx = build_context(
        settings,
        pool=await db_pool(),
        storage=storage(),
        enqueuer=Enqueuer(runtime.broker),
        redis=client,
    )
    try:
        result = await run_task(ctx, task_name, slot=slot)
    finally:
        if client is not None:
            await client.aclose()
    log.info("maintenance %s: %s", task_name, result)
