"""Reading the worker heartbeats (``<ns>:workers:<host>:<pid>``).

Each worker process writes its own key (see ``pipeline/workers/heartbeat.py``)
holding the queues it consumes and the jobs it runs; the key expires when
the worker stops beating.  The health check, the queue status and the
stuck-job reaper all read them through :func:`read_heartbeats`.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from t2m.redis_client import worker_heartbeat_pattern
from t2m.settings import Settings

# SCAN walks the whole keyspace whatever the pattern; a large COUNT keeps the
# number of round trips small on a Redis full of cache and broker keys.
SCAN_COUNT = 1000


async def read_heartbeats(client: aioredis.Redis, settings: Settings) -> list[dict[str, Any]]:
    """The payload of every live worker's heartbeat; unreadable ones are left out.

    Redis errors propagate: callers decide what an unknown liveness means.
    """
    pattern = worker_heartbeat_pattern(settings)
    keys = [key async for key in client.scan_iter(match=pattern, count=SCAN_COUNT)]
    if not keys:
        return []
    beats: list[dict[str, Any]] = []
    for raw in await client.mget(keys):
        if not raw:
            continue  # expired between SCAN and MGET
        try:
            beat = json.loads(raw)
        except ValueError:
            continue
        if isinstance(beat, dict):
            beats.append(beat)
    return beats
