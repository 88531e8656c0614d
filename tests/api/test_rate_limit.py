"""Per-caller rate limits: exact under concurrency, shared across processes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from api.app import create_app
from t2m.embedded import free_port
from t2m.settings import Settings


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return settings.with_overrides(
        rate_limit_general=5, rate_limit_system=4, rate_limit_video=2, rate_limit_uploads=3
    )


async def test_exactly_the_limit_passes_under_concurrency(
    db: Any, limited: Settings, aiohttp_client: Any
) -> None:
    client = await aiohttp_client(create_app(limited))
    responses = await asyncio.gather(*(client.get("/api/v1/system/queue") for _ in range(10)))
    statuses = sorted(r.status for r in responses)
    assert statuses.count(429) == 6
    assert len([s for s in statuses if s != 429]) == 4


async def test_limit_is_shared_by_two_app_instances(
    db: Any, limited: Settings, aiohttp_client: Any
) -> None:
    first = await aiohttp_client(create_app(limited))
    second = await aiohttp_client(create_app(limited))
    calls = [(first if i % 2 else second).get("/api/v1/auth/status") for i in range(9)]
    responses = await asyncio.gather(*calls)
    assert sum(r.status != 429 for r in responses) == 5


async def test_headers_and_429_body(db: Any, limited: Settings, aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(limited))
    first = await client.get("/api/v1/auth/status")
    assert first.headers["X-RateLimit-Limit"] == "5"
    assert first.headers["X-RateLimit-Remaining"] == "4"
    assert int(first.headers["X-RateLimit-Reset"]) > 0
    for _ in range(4):
        await client.get("/api/v1/auth/status")
    over = await client.get("/api/v1/auth/status")
    assert over.status == 429
    assert over.headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(over.headers["Retry-After"]) <= 3600
    body = await over.json()
    assert body["success"] is False
    assert body["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert body["error"]["details"].startswith(
        "You have exceeded the limit of 5 requests per hour."
    )
    assert "Try again in" in body["error"]["details"]
    # Error answers (404 here) carry the headers too.
    missing = await client.get("/api/v1/no-such-thing")
    assert "X-RateLimit-Limit" in missing.headers


async def test_buckets_are_separate_and_per_user(
    db: Any, limited: Settings, aiohttp_client: Any, make_user: Any
) -> None:
    client = await aiohttp_client(create_app(limited))
    alice, bob = await make_user(), await make_user()
    for _ in range(2):
        response = await client.post("/api/v1/videos/generate", json={}, headers=alice.headers)
        assert response.status != 429
    over = await client.post("/api/v1/videos/generate", json={}, headers=alice.headers)
    assert over.status == 429
    assert "2 video generations per hour" in (await over.json())["error"]["details"]
    # Bob has his own budget; Alice still has general requests left.
    other = await client.post("/api/v1/videos/generate", json={}, headers=bob.headers)
    assert other.status != 429
    me = await client.get("/api/v1/auth/me", headers=alice.headers)
    assert me.status == 200


async def test_anonymous_root_callers_get_tighter_limits(
    db: Any, settings: Settings, aiohttp_client: Any
) -> None:
    client = await aiohttp_client(
        create_app(settings.with_overrides(rate_limit_general=20, rate_limit_guest_divisor=10))
    )
    response = await client.get("/contents")
    assert response.headers["X-RateLimit-Limit"] == "2"
    response = await client.get("/api/v1/auth/status")
    assert response.headers["X-RateLimit-Limit"] == "20"


async def test_redis_down_fails_open(
    db: Any, limited: Settings, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    down = limited.with_overrides(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = await aiohttp_client(create_app(down))
    with caplog.at_level(logging.WARNING, logger="api.rate_limit"):
        response = await client.get("/api/v1/auth/status")
    assert response.status == 200
    assert "X-RateLimit-Limit" not in response.headers
    assert "rate limiting skipped" in caplog.text


@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/health/live",
        "/api/v1/system/health",
        "/api/v1/system/health/live",
        "/api/v1/auth/health",
    ],
)
async def test_health_probes_are_never_limited(
    db: Any, settings: Settings, aiohttp_client: Any, path: str
) -> None:
    # A load balancer probing one instance every few seconds from one address,
    # as a guest: far past the guest budget, every probe still answers.
    strict = settings.with_overrides(rate_limit_general=4, rate_limit_guest_divisor=2)
    client = await aiohttp_client(create_app(strict))
    for method in ("GET", "HEAD"):
        for _ in range(6):
            response = await client.request(method, path)
            assert response.status == 200, (method, response.status)
            assert "X-RateLimit-Limit" not in response.headers
    # The budget is untouched by the probes: an ordinary call is still counted from 4.
    response = await client.get("/api/v1/auth/status")
    assert response.headers["X-RateLimit-Remaining"] == "3"
