"""A real worker process takes messages from the real Redis broker."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import redis

from t2m.broker import build_broker
from t2m.enqueue import Enqueuer
from t2m.queues import PING, RUN_MAINTENANCE
from t2m.redis_client import redis_key
from tests.pipeline.workers.conftest import wait_for


async def test_worker_consumes_messages_and_reports_liveness(
    settings, db, start_worker, client, make_user
):
    worker = start_worker(["maintenance"])
    redis_client = redis.Redis.from_url(settings.redis_url)

    # Liveness is visible to the API (the worker list to administrators).
    admin = await make_user("ADMIN")
    body = await (await client.get("/health", headers=admin.headers)).json()
    assert body["components"]["workers"]["alive"] == 1
    assert body["components"]["workers"]["workers"][0]["queues"] == ["maintenance"]

    enqueuer = Enqueuer(build_broker(settings))
    nonce = secrets.token_hex(8)
    enqueuer.send_now(PING, nonce)
    wait_for(lambda: redis_client.get(redis_key(settings, "pong", nonce)), 30, "the pong")

    # An async actor with database access, through the same broker.
    async with db.acquire() as conn:
        await conn.execute(
            "INSERT INTO revoked_tokens (jti, expires_at) VALUES ('old', $1), ('live', $2)",
            datetime.now(UTC) - timedelta(hours=1),
            datetime.now(UTC) + timedelta(hours=1),
        )
    enqueuer.send_now(RUN_MAINTENANCE, "expire_revoked_tokens")

    async def remaining() -> list[str]:
        async with db.acquire() as conn:
            return [r["jti"] for r in await conn.fetch("SELECT jti FROM revoked_tokens")]

    import asyncio

    for _ in range(300):
        if await remaining() == ["live"]:
            break
        await asyncio.sleep(0.1)
    assert await remaining() == ["live"], worker.log_text()

    # A clean shutdown removes the heartbeat at once.
    assert worker.stop() == 0, worker.log_text()
    assert not list(redis_client.scan_iter(redis_key(settings, "workers", "*")))
