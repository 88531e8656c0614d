"""GET /api/v1/system/queue: counts read from Dramatiq's own Redis keys."""

from __future__ import annotations

import json
import time
from typing import Any

import asyncpg
import redis
from dramatiq.brokers.redis import RedisBroker

from t2m.broker import DramatiqKeys, build_broker
from t2m.enqueue import Enqueuer
from t2m.queues import MAKE_THUMBNAILS, RENDER_VIDEO
from t2m.redis_client import redis_key
from t2m.settings import Settings
from tests.api.monitoring_helpers import job_with_stage_times

HOUR_MS = 3600 * 1000


def _fetch_one(consumer: Any) -> Any:
    # The consumer yields None while it backs off on an empty fetch.
    for _ in range(50):
        message = next(consumer)
        if message is not None:
            return message
    raise AssertionError("no message fetched")


def _backlog(settings: Settings) -> None:
    """render: 6 sent, 2 delayed by an hour; of the 6 ready, one is
    dead-lettered, one is held by a live worker, one by a dead worker.
    thumbnails: 1 ready.  No worker consumes any of them."""
    # No maintenance pass: it would hand the dead worker's message back.
    quiet = settings.with_overrides(broker_maintenance_chance=0)
    broker, dead_broker = build_broker(quiet), build_broker(quiet)
    assert isinstance(dead_broker, RedisBroker)
    try:
        enqueuer = Enqueuer(broker)
        for n in range(6):
            enqueuer.send_now(RENDER_VIDEO, f"job_{n}")
        for n in range(2):
            enqueuer.send_now(RENDER_VIDEO, f"later_{n}", delay_ms=HOUR_MS)
        enqueuer.send_now(MAKE_THUMBNAILS, "job_t")

        consumer = broker.consume("render", prefetch=1)
        consumer.nack(_fetch_one(consumer))  # → dead letters
        _fetch_one(consumer)  # → in flight, never acknowledged

        dead_consumer = dead_broker.consume("render", prefetch=1)
        _fetch_one(dead_consumer)
        # That worker's last broker call was long ago: it is dead.
        sync = redis.Redis.from_url(settings.redis_url)
        sync.zadd(DramatiqKeys.of(settings).heartbeats, {dead_broker.broker_id: 1})
        sync.close()
    finally:
        broker.close()
        dead_broker.close()


async def test_queue_counts_match_a_known_backlog(
    client: Any, make_user: Any, settings: Settings
) -> None:
    admin = await make_user("ADMIN")
    _backlog(settings)

    response = await client.get("/api/v1/system/queue", headers=admin.headers)
    assert response.status == 200, await response.text()
    data = (await response.json())["data"]
    assert data["detail"] == "full" and data["broker"] == "redis"
    render = data["queues"]["render"]
    assert {k: render[k] for k in ("ready", "delayed", "in_flight", "orphaned", "dead_letter")} == {
        "ready": 3,
        "delayed": 2,
        "in_flight": 1,
        "orphaned": 1,
        "dead_letter": 1,
    }
    assert data["queues"]["thumbnails"]["ready"] == 1
    assert data["queues"]["parse"] == {
        "ready": 0,
        "delayed": 0,
        "in_flight": 0,
        "orphaned": 0,
        "dead_letter": 0,
        "workers": 0,
        "mean_stage_s": None,
        "estimated_wait_s": 0.0,
    }
    assert data["totals"] == {
        "ready": 4,
        "delayed": 2,
        "in_flight": 1,
        "orphaned": 1,
        "dead_letter": 1,
    }
    assert data["pending_jobs"] == 6
    assert data["workers_alive"] == 0 and data["status"] == "no_workers"
    # No worker on render: no estimate.
    assert render["workers"] == 0 and render["estimated_wait_s"] is None


async def test_estimated_wait_uses_recent_stage_durations_and_live_workers(
    client: Any, make_user: Any, settings: Settings, db: asyncpg.Pool
) -> None:
    admin = await make_user("ADMIN")
    _backlog(settings)
    # Render took 10 s and 20 s in two recent jobs: a mean of 15 s.
    for render_s in (10, 20):
        await job_with_stage_times(
            db,
            admin.id,
            {"parse": 0, "storyboard": 1, "render": 2, "thumbnails": 2 + render_s},
            completed_after_s=3 + render_s,
        )
    # A live worker process on render, as pipeline/workers/heartbeat.py writes it.
    sync = redis.Redis.from_url(settings.redis_url)
    sync.set(
        redis_key(settings, "workers", "render-host:4242"),
        json.dumps(
            {
                "host": "render-host",
                "pid": 4242,
                "queues": ["render"],
                "started_at": time.time(),
                "beat_at": time.time(),
            }
        ),
        px=60_000,
    )
    sync.close()

    data = (await (await client.get("/api/v1/system/queue", headers=admin.headers)).json())["data"]
    render = data["queues"]["render"]
    assert render["workers"] == 1 and render["mean_stage_s"] == 15.0
    # 3 ready × 15 s ÷ 1 worker.
    assert render["estimated_wait_s"] == 45.0
    assert data["status"] == "ok" and data["workers_alive"] == 1
    assert data["workers"][0]["host"] == "render-host" and data["workers"][0]["queues"] == [
        "render"
    ]
    assert "÷ live worker" in data["estimated_wait_method"]


async def test_queue_summary_for_everyone_detail_for_admins(
    client: Any, make_user: Any, settings: Settings
) -> None:
    _backlog(settings)
    user = await make_user()
    for headers in (dict[str, str](), user.headers):
        response = await client.get("/api/v1/system/queue", headers=headers)
        assert response.status == 200
        data = (await response.json())["data"]
        assert data["detail"] == "summary"
        assert data["pending_jobs"] == 6 and data["totals"]["dead_letter"] == 1
        assert "queues" not in data and "workers" not in data

    refused = await client.get("/api/v1/system/queue?detail=full", headers=user.headers)
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "PERMISSION_DENIED"
    anonymous = await client.get("/api/v1/system/queue?detail=full")
    assert anonymous.status == 401
    bad = await client.get("/api/v1/system/queue?detail=everything")
    assert bad.status == 400
    assert (await bad.json())["error"]["code"] == "VALIDATION_ERROR"
