"""Per-request overhead of the rate-limit and request-metrics middlewares.

Builds the app in four variants in one run against the same PostgreSQL/Redis
(test infrastructure: ``DATABASE_URL``/``REDIS_URL`` or embedded servers) —
no middleware of the two, rate limit only, metrics only, both — and times
sequential requests to a cheap endpoint (``GET /api/v1/auth/health``: no
database) through aiohttp's test client.  Rounds are interleaved so drift
(CPU frequency, caches, other load) hits every variant alike.  The
difference of the percentiles to the "neither" variant is the middleware's
cost: for the rate limit one Redis EVAL round trip (plus a JWT check when a
token is sent); for the metrics a few counter updates.

The metrics cost is far below the noise of a whole HTTP round trip, so it is
also timed alone: ``RequestMetrics.record`` called in a loop over a realistic
spread of routes and latencies; and so is the recent-logs buffer's cost per
record (at INFO an API process keeps one access-log record per request).

    .venv/bin/python bench/bench_middleware.py [--requests 3000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.app import create_app
from api.monitoring.request_metrics import RequestMetrics
from api.monitoring.state import request_metrics_middleware
from db.migrate import migrate_dsn
from t2m.logs import RecentLogs
from t2m.settings import Settings
from tests.infra import delete_namespace, provide_infra

# (rate limit on, metrics on) → label
VARIANTS: dict[tuple[bool, bool], str] = {
    (False, False): "neither",
    (True, False): "rate limit only",
    (False, True): "metrics only",
    (True, True): "both",
}


async def _measure(settings: Settings, metrics: bool, requests: int) -> list[float]:
    app = create_app(settings)
    if not metrics:
        # The middleware list is still open before the app starts.
        app.middlewares.remove(request_metrics_middleware)
    async with TestClient(TestServer(app)) as client:
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


def _record_cost(calls: int = 200_000) -> float:
    """Microseconds per ``RequestMetrics.record`` call."""
    metrics = RequestMetrics()
    rng = random.Random(7)
    routes = [f"/api/v1/resource{i}/{{id}}" for i in range(40)]
    samples = [
        (rng.choice(routes), rng.choice((200, 200, 200, 404, 500)), rng.lognormvariate(-6, 1.5))
        for _ in range(1000)
    ]
    started = time.perf_counter()
    for i in range(calls):
        route, status, elapsed = samples[i % 1000]
        metrics.record("GET", route, status, elapsed)
    return (time.perf_counter() - started) / calls * 1e6


def _log_buffer_cost(calls: int = 100_000) -> float:
    """Microseconds per record kept by the recent-logs buffer (an API process
    at INFO logs one access line per request)."""
    buffer = RecentLogs(capacity=5000)
    record = logging.LogRecord(
        "t2m.access", logging.INFO, __file__, 1, "%s %s %s %.1fms", None, None
    )
    record.args = ("GET", "/api/v1/files/abc", 200, 1.5)
    started = time.perf_counter()
    for _ in range(calls):
        buffer.handle(record)
    return (time.perf_counter() - started) / calls * 1e6


def main(requests: int, rounds: int) -> None:
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
        results: dict[tuple[bool, bool], list[float]] = {}
        try:
            for _ in range(rounds):
                for rate_limit, metrics in VARIANTS:
                    settings = base.with_overrides(rate_limit_enabled=rate_limit)
                    timings = asyncio.run(_measure(settings, metrics, requests))
                    results.setdefault((rate_limit, metrics), []).extend(timings)
        finally:
            delete_namespace(infra.redis_url, infra.namespace)
    baseline = results[(False, False)]
    print(f"requests per variant: {len(baseline)} ({rounds} interleaved rounds)")
    print(f"{'variant':16s} {'p50 us':>8s} {'p99 us':>8s} {'Δp50 us':>8s} {'Δp99 us':>8s}")
    for key, name in VARIANTS.items():
        values = results[key]
        print(
            f"{name:16s} {_pct(values, 50):8.0f} {_pct(values, 99):8.0f}"
            f" {_pct(values, 50) - _pct(baseline, 50):+8.0f}"
            f" {_pct(values, 99) - _pct(baseline, 99):+8.0f}"
        )
    print(f"RequestMetrics.record alone: {_record_cost():.2f} us per call")
    print(f"RecentLogs buffer, per record kept: {_log_buffer_cost():.2f} us")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    main(args.requests, args.rounds)
