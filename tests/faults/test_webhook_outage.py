"""A webhook receiver down for an hour: every delivery arrives once, in order.

Real parts: a ``t2m worker`` process on the ``webhooks`` queue, the real
Redis broker, and a local aiohttp receiver that answers 503 while "down".

The hour is simulated by moving the delivery rows back in time: each tick
shifts every pending delivery's ``created_at`` / ``next_attempt_at`` /
``last_attempt_at`` into the past by as much as its backoff still has to
run (plus the sweep's grace) and then runs the same sweep the scheduler runs
(``requeue_webhook_deliveries``), so each attempt happens exactly when the
production backoff (``WEBHOOK_RETRY_BASE_S`` = 30 s, doubling, capped at an
hour) says it would, only sooner.  The worker's own delayed retry messages,
still waiting in Redis for real seconds, find their delivery already
handled and drop out - the row is the truth.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web

from api.keys import ENQUEUER
from pipeline.maintenance.tasks import WEBHOOK_SWEEP_GRACE_S, requeue_webhook_deliveries
from t2m.queues import DELIVER_WEBHOOK
from t2m.settings import Settings
from tests.faults.servers import start_worker
from tests.support.webhooks import emit_progress

pytestmark = pytest.mark.faults

OUTAGE_S = 3600.0
JOBS = 2
STEPS = (10, 20, 30, 40, 50)


class Receiver:
    """Idempotent by event id, as the README tells receivers to be."""

    def __init__(self) -> None:
        self.up = False
        self.attempts: list[dict] = []  # every request, failed or not
        self.accepted: list[dict] = []  # the requests answered 200

    async def handle(self, request: web.Request) -> web.Response:
        payload = json.loads(await request.read())
        self.attempts.append(payload)
        if not self.up:
            return web.Response(status=503, text="receiver down")
        self.accepted.append(payload)
        return web.Response(text="ok")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(webhook_allowed_cidrs=("127.0.0.1/32",))


async def _pending(db: asyncpg.Pool) -> list[asyncpg.Record]:
    async with db.acquire() as conn:
        return list(
            await conn.fetch(
                "SELECT id, attempts, status, (locked_until > now()) AS busy,"
                " extract(epoch FROM next_attempt_at - now())::float8 AS wait_s"
                " FROM webhook_deliveries WHERE status = 'pending'"
            )
        )


async def _settle(db: asyncpg.Pool, attempts_before: int, heads: int) -> None:
    """Wait until the ``heads`` swept deliveries have each made their attempt."""
    for _ in range(300):
        async with db.acquire() as conn:
            attempts = await conn.fetchval(
                "SELECT coalesce(sum(attempts), 0) FROM webhook_deliveries"
            )
            busy = await conn.fetchval(
                "SELECT count(*) FROM webhook_deliveries WHERE locked_until > now()"
            )
        if attempts >= attempts_before + heads and busy == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the swept deliveries were not attempted")


async def _advance_clock(db: asyncpg.Pool) -> float:
    """Move pending deliveries back so the earliest is due past the sweep's grace."""
    rows = await _pending(db)
    shift = max([0.0, *(r["wait_s"] for r in rows)]) + WEBHOOK_SWEEP_GRACE_S + 1
    async with db.acquire() as conn:
        await conn.execute(
            """
            UPDATE webhook_deliveries SET
                created_at = created_at - make_interval(secs => $1),
                next_attempt_at = next_attempt_at - make_interval(secs => $1),
                last_attempt_at = last_attempt_at - make_interval(secs => $1)
            WHERE status = 'pending'
            """,
            shift,
        )
    return shift


async def test_deliveries_arrive_in_order_after_an_hour_long_outage(
    client, make_user, db: asyncpg.Pool, settings: Settings, aiohttp_server, tmp_path: Path
) -> None:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(app)
    user = await make_user()
    response = await client.post(
        "/api/v1/webhooks",
        json={"url": f"http://127.0.0.1:{server.port}/hook", "events": ["job.progress"]},
        headers=user.headers,
    )
    assert response.status == 201, await response.text()

    # Jobs stay queued (no parse worker): only their events matter here.
    job_ids = []
    for n in range(JOBS):
        response = await client.post(
            "/api/v1/videos/generate", json={"script": f"Job {n}."}, headers=user.headers
        )
        job_ids.append((await response.json())["data"]["id"])
    async with db.acquire() as conn:
        for step in STEPS:
            for job_id in job_ids:
                await emit_progress(conn, user.id, job_id, step)
        all_ids = [r["id"] for r in await conn.fetch("SELECT id FROM webhook_deliveries")]
    total = JOBS * len(STEPS)
    assert len(all_ids) == total

    worker = start_worker(
        settings,
        ["webhooks"],
        tmp_path / "worker.log",
        WEBHOOK_ALLOWED_CIDRS="127.0.0.1/32",
        WEBHOOK_RETRY_BASE_S="30",
        WEBHOOK_TIMEOUT_S="5",
        WEBHOOK_CONNECT_TIMEOUT_S="2",
    )

    async def send(ids) -> None:
        for delivery_id in ids:
            await client.app[ENQUEUER].send(DELIVER_WEBHOOK, delivery_id)

    try:
        # The first attempts, at real time, fail: the receiver is down.
        await send(all_ids)
        await _settle(db, 0, JOBS)
        simulated, ticks = 0.0, 0
        while simulated < OUTAGE_S:
            simulated += await _advance_clock(db)
            attempts = sum(r["attempts"] for r in await _pending(db))
            swept = await requeue_webhook_deliveries(db, send=send)
            assert swept == {"requeued": JOBS}  # only the head of each job's stream
            await _settle(db, attempts, JOBS)
            ticks += 1
        # An hour of backoff: a handful of attempts, not a storm; nothing given up.
        assert 5 <= ticks <= 12, ticks
        assert len(await _pending(db)) == total
        assert receiver.accepted == []
        assert {a["sequence"] for a in receiver.attempts} == {1}  # later events waited

        receiver.up = True
        await _advance_clock(db)
        assert await requeue_webhook_deliveries(db, send=send) == {"requeued": JOBS}
        for _ in range(300):
            if not await _pending(db) and len(receiver.accepted) >= total:
                break
            await asyncio.sleep(0.1)
        assert await _pending(db) == []
        async with db.acquire() as conn:
            statuses = Counter(
                r["status"] for r in await conn.fetch("SELECT status FROM webhook_deliveries")
            )
        assert statuses == {"delivered": total}

        events = Counter(a["id"] for a in receiver.accepted)
        assert len(events) == total and set(events.values()) == {1}  # none lost or doubled
        for job_id in job_ids:
            stream = [a for a in receiver.accepted if a["data"]["job_id"] == job_id]
            assert [a["sequence"] for a in stream] == list(range(1, len(STEPS) + 1))
            assert [a["data"]["progress"] for a in stream] == list(STEPS)
    finally:
        worker.stop()
