"""Queue depths read from Dramatiq's own Redis keys, and the live workers.

Key layout: :mod:`t2m.broker`.
A broker id whose heartbeat is older than the broker's heartbeat timeout is
dead; its unacknowledged messages ("orphaned") go back to the queue at the
broker's next maintenance pass.  T2M's own worker heartbeats
(``<ns>:workers:<host>:<pid>``, see ``pipeline/workers/heartbeat.py``) say
which worker processes are alive and what queues they consume.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from t2m.broker import DramatiqKeys
from t2m.queues import QUEUES
from t2m.redis_text import redis_text as _text
from t2m.settings import Settings
from t2m.worker_heartbeats import SCAN_COUNT, read_heartbeats

WAIT_METHOD = (
    "ready messages × mean duration of that stage over the last hour "
    "÷ live worker processes consuming the queue (each runs several threads, "
    "so this is an upper bound); null without a recent duration or without a live worker"
)


@dataclass
class QueueCounts:
    ready: int = 0
    delayed: int = 0
    in_flight: int = 0
    orphaned: int = 0
    dead_letter: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "ready": self.ready,
            "delayed": self.delayed,
            "in_flight": self.in_flight,
            "orphaned": self.orphaned,
            "dead_letter": self.dead_letter,
        }


async def queue_counts(
    client: aioredis.Redis,
    settings: Settings,
    queues: tuple[str, ...] = QUEUES,
) -> dict[str, QueueCounts]:
    """Counts per queue; three round trips whatever the number of queues."""
    keys = DramatiqKeys.of(settings)
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(keys.ready(queue))
        pipe.hlen(keys.delayed_messages(queue))
        pipe.zcard(keys.dead_letters(queue))
    pipe.zrange(keys.heartbeats, 0, -1, withscores=True)
    values = await pipe.execute()
    counts: dict[str, QueueCounts] = {}
    for index, queue in enumerate(queues):
        ready, delayed, dead = values[index * 3 : index * 3 + 3]
        counts[queue] = QueueCounts(ready=int(ready), delayed=int(delayed), dead_letter=int(dead))

    now_ms = time.time() * 1000
    alive_brokers = {
        _text(member)
        for member, score in values[-1]
        if now_ms - float(score) < settings.broker_heartbeat_timeout_ms
    }
    prefix = keys.acks_prefix
    ack_keys = [_text(key) async for key in client.scan_iter(match=prefix + "*", count=SCAN_COUNT)]
    if ack_keys:
        pipe = client.pipeline(transaction=False)
        for key in ack_keys:
            pipe.scard(key)
        sizes = await pipe.execute()
        for key, size in zip(ack_keys, sizes, strict=True):
            # "<broker id>.<queue>"; broker ids are UUIDs (no dots).  Acks of a
            # delay queue (".DQ") are delayed messages, already counted.
            broker_id, _, queue = key[len(prefix) :].partition(".")
            if queue not in counts:
                continue
            if broker_id in alive_brokers:
                counts[queue].in_flight += int(size)
            else:
                counts[queue].orphaned += int(size)
    return counts


async def live_workers(client: aioredis.Redis, settings: Settings) -> list[dict[str, Any]]:
    beats = [
        {
            "host": beat.get("host"),
            "pid": beat.get("pid"),
            "queues": list(beat.get("queues", [])),
            "started_at": beat.get("started_at"),
            "last_beat_at": beat.get("beat_at"),
        }
        for beat in await read_heartbeats(client, settings)
    ]
    return sorted(beats, key=lambda b: (str(b["host"]), int(b["pid"] or 0)))


def estimated_wait_s(ready: int, mean_stage_s: float | None, workers: int) -> float | None:
    if ready == 0:
        return 0.0
    if mean_stage_s is None or workers == 0:
        return None
    return round(ready * mean_stage_s / workers, 1)
