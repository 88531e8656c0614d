"""A slot whose enqueue fails is given back, so it can still run once."""

from __future__ import annotations

import json
import socket
import time

import redis
from redis.asyncio import Redis

from scheduler.jobs import ScheduledJob
from scheduler.main import claim_slot, enqueue_slot, slot_of
from t2m.broker import DramatiqKeys, build_broker
from t2m.enqueue import Enqueuer
from t2m.settings import Settings

JOB = "expire_revoked_tokens"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _maintenance_messages(settings: Settings) -> list[list[object]]:
    sync = redis.Redis.from_url(settings.redis_url)
    try:
        raws = sync.hvals(DramatiqKeys.of(settings).messages("maintenance"))
    finally:
        sync.close()
    return [json.loads(raw)["args"] for raw in raws]


async def test_a_failed_enqueue_gives_the_slot_back(settings: Settings, db) -> None:
    job = ScheduledJob(JOB, 60)
    client = Redis.from_url(settings.redis_url)
    # The broker is unreachable (nothing listens there) while Redis for the
    # claims is up: the send fails after a successful claim.
    down = build_broker(settings.with_overrides(broker_url=f"redis://127.0.0.1:{_closed_port()}"))
    up = build_broker(settings)
    try:
        slot = slot_of(time.time(), job.interval_s)
        assert await enqueue_slot(client, settings, Enqueuer(down), job, slot) is None
        assert _maintenance_messages(settings) == []
        # Given back: a later tick (or the standby) can claim and run it.
        assert await claim_slot(client, settings, job, slot) is True
        await client.delete(f"{settings.redis_namespace}:scheduler:slot:{JOB}:{slot}")

        assert await enqueue_slot(client, settings, Enqueuer(up), job, slot) is True
        assert _maintenance_messages(settings) == [[JOB, slot]]
        # Sent once: the slot stays claimed.
        assert await enqueue_slot(client, settings, Enqueuer(up), job, slot) is False
        assert _maintenance_messages(settings) == [[JOB, slot]]
    finally:
        down.close()
        up.close()
        await client.aclose()
