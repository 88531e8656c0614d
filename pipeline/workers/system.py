"""Housekeeping actors on the ``maintenance`` queue."""

from __future__ import annotations

import logging
import time

import dramatiq
import redis

from pipeline.stages.maintenance import MAINTENANCE_TASKS
from pipeline.workers import runtime
from pipeline.workers.resources import db_pool
from t2m.queues import PING, RUN_MAINTENANCE
from t2m.redis_client import redis_key

log = logging.getLogger(__name__)


@dramatiq.actor(actor_name=PING.actor_name, queue_name=PING.queue_name, max_retries=0)
def ping(nonce: str) -> None:
    """Record that a worker took a message; used by health checks and tests."""
    client = redis.Redis.from_url(runtime.settings.redis_url, socket_timeout=2)
    client.set(redis_key(runtime.settings, "pong", nonce), str(time.time()), ex=300)


@dramatiq.actor(
    actor_name=RUN_MAINTENANCE.actor_name, queue_name=RUN_MAINTENANCE.queue_name, max_retries=3
)
async def run_maintenance(task_name: str) -> None:
    task = MAINTENANCE_TASKS.get(task_name)
    if task is None:
        log.error("unknown maintenance task %r; dropped", task_name)
        return
    result = await task(await db_pool())
    log.info("maintenance %s: %s", task_name, result)
