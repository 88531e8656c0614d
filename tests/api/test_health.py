"""Health reports each component with its latency; 503 with a body when one is down."""

from __future__ import annotations

import json
import os
import socket

from api.app import create_app
from t2m.redis_client import redis_key


async def test_health_without_workers_is_degraded(client):
    response = await client.get("/health")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "degraded"
    components = body["components"]
    for name in ("database", "redis", "storage"):
        assert components[name]["status"] == "healthy"
        assert components[name]["latency_ms"] >= 0
    assert components["workers"]["status"] == "degraded"
    assert components["workers"]["alive"] == 0


async def test_health_with_a_worker_heartbeat_is_healthy(client, settings):
    from redis.asyncio import Redis

    from t2m.queues import QUEUES

    redis = Redis.from_url(settings.redis_url)
    beat = {"host": socket.gethostname(), "pid": os.getpid(), "queues": list(QUEUES)}
    await redis.set(redis_key(settings, "workers", "test:1"), json.dumps(beat), ex=30)
    await redis.aclose()
    response = await client.get("/api/v1/system/health")
    assert response.status == 200
    body = await response.json()
    assert body["success"] is True
    assert body["data"]["status"] == "healthy"
    assert body["data"]["components"]["workers"]["alive"] == 1


async def test_health_is_503_with_a_body_when_the_database_is_down(aiohttp_client, settings, db):
    app = create_app(settings)
    client = await aiohttp_client(app)
    # Point the pool at nothing: close it, as if the server went away.
    from api.keys import DB_POOL

    await app[DB_POOL].close()
    response = await client.get("/health")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "unhealthy"
    assert body["components"]["database"]["status"] == "unhealthy"
    # Error texts are for administrators (whose token cannot be checked while
    # the database is down): anyone else learns which component, not why.
    assert "error" not in body["components"]["database"]
    response = await client.get("/api/v1/system/health")
    assert response.status == 503
    body = await response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert body["error"]["details"] == {"database": "unhealthy"}


async def test_health_is_503_when_redis_is_unreachable(aiohttp_client, settings, db):
    from t2m.embedded import free_port

    down = settings.with_overrides(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = await aiohttp_client(create_app(down))
    response = await client.get("/health")
    assert response.status == 503
    body = await response.json()
    assert body["components"]["redis"]["status"] == "unhealthy"
    assert body["components"]["database"]["status"] == "healthy"
    assert "error" not in body["components"]["redis"]
    # An administrator gets the error text.
    from db.users import insert_user
    from tests.support.tokens import access_token

    async with db.acquire() as conn:
        admin = await insert_user(
            conn, username="healthadmin", email="ha@example.test", password_hash=None, role="ADMIN"
        )
    token = access_token(down, admin["id"], role="ADMIN")
    response = await client.get("/health", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 503
    assert (await response.json())["components"]["redis"]["error"]
