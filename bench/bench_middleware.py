"""Per-request overhead of the rate-limit middleware.

Builds the app twice in one run against the same PostgreSQL/Redis (test
infrastructure: ``DATABASE_URL``/``REDIS_URL`` or embedded servers), once
with ``rate_limit_enabled`` and once without, and times sequential requests
to a cheap endpoint (``GET /api/v1/auth/health``: no database) through
aiohttp's test client.  The difference of the percentiles is the middleware's
cost (one Redis EVAL round trip plus a JWT check when a token is sent).

    .venv/bin/python bench/bench_middleware.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.app import create_app
from db.migrate import migrate_dsn
from t2m.settings import Settings
from tests.infra import delete_namespace, provide_infra


async def _measure(settings: Settings, requests: int) -> list[float]:
    async with TestClient(TestServer(create_app(settings))) as client:
        for _ in range(200):  # warm-up: connections, script cache
            await (await client.get("/api/v1/auth/health")).read()
        timings = []
        for _ in range(requests):
            started = time.perf_counter()
            response = await client.get("/api/v1/auth/health")
            await response.read()
            timings.append((time.perf_counter() - started) * 1e6)
            assert response.status == 200
        return timings


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main(requests: int) -> None:
    # The infrastructure probe runs its own event loop: set up outside ours.
    with tempfile.TemporaryDirectory() as scratch, provide_infra(Path(scratch)) as infra:
        asyncio.run(migrate_dsn(infra.database_url))
        base = Settings(
            env="test",
            var_dir=Path(scratch) / "var",
            database_url=infra.database_url,
            redis_url=infra.redis_url,
            redis_namespace=infra.namespace,
            jwt_secret="bench-" + "x" * 40,
            signing_secret="bench-" + "y" * 40,
            storage_root=Path(scratch) / "storage",
            rate_limit_general=10**9,
        )
        results: dict[bool, list[float]] = {}
        try:
            # Interleaved rounds so drift (CPU frequency, caches) hits both.
            for _ in range(2):
                for enabled in (False, True):
                    settings = base.with_overrides(rate_limit_enabled=enabled)
                    timings = asyncio.run(_measure(settings, requests))
                    results.setdefault(enabled, []).extend(timings)
        finally:
            delete_namespace(infra.redis_url, infra.namespace)
    off, on = results[False], results[True]
    print(f"requests per variant: {len(off)}")
    for name, values in (("without rate limit", off), ("with rate limit", on)):
        print(f"{name:20s} p50 {_pct(values, 50):7.0f} us   p99 {_pct(values, 99):7.0f} us")
    print(
        f"{'overhead':20s} p50 {_pct(on, 50) - _pct(off, 50):+7.0f} us"
        f"   p99 {_pct(on, 99) - _pct(off, 99):+7.0f} us"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    main(parser.parse_args().requests)
