"""Per-route request counts, status classes and latency, kept in this process.

The middleware (in ``api.monitoring.state``) labels each request by its *route pattern*
(``/api/v1/files/{file_id}``), never the raw path: raw paths carry ids and
would grow the table without bound.  Latency goes into fixed log-spaced
buckets (factor √2 from 0.1 ms to ~52 s), so memory per route is constant and
p50/p95/p99 are estimated from the buckets (within one bucket, ±~20 %).

Recording is a handful of integer increments on the event loop thread — no
lock is needed, and nothing is allocated per request once a route is known.
Figures are this API process's since it started; several processes each keep
their own.
"""

from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# Bucket upper bounds in seconds: 1e-4 · 2^(i/2).  Every 4th bound (factor 4)
# is also a Prometheus bucket, so the coarse exposition is exact.
BOUNDS: tuple[float, ...] = tuple(1e-4 * 2 ** (i / 2) for i in range(39))
PROMETHEUS_BOUNDS: tuple[float, ...] = BOUNDS[::4]
UNMATCHED_ROUTE = "<unmatched>"
# Seconds of per-second request counts kept for the recent request rate.
RATE_WINDOW_S = 60


@dataclass(slots=True)
class RouteStats:
    count: int = 0
    total_s: float = 0.0
    max_s: float = 0.0
    # Index = status // 100 (1xx … 5xx); cancelled requests (client gone)
    # have no status and are counted apart.
    status_classes: list[int] = field(default_factory=lambda: [0] * 6)
    cancelled: int = 0
    # One count per BOUNDS entry, plus one for slower than the last bound.
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS) + 1))

    @property
    def errors(self) -> int:
        return self.status_classes[5]

    def percentile(self, q: float) -> float | None:
        estimate = percentile_from_buckets(self.buckets, self.count - self.cancelled, q)
        # Interpolation inside the top bucket can overshoot the slowest
        # request actually seen.
        return None if estimate is None else min(estimate, self.max_s)


def percentile_from_buckets(buckets: list[int], total: int, q: float) -> float | None:
    """Estimate the ``q`` quantile (0–1), interpolating geometrically inside
    the bucket where the rank falls (latencies are log-distributed)."""
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for index, n in enumerate(buckets):
        if n and seen + n >= rank:
            upper = BOUNDS[index] if index < len(BOUNDS) else BOUNDS[-1] * 2
            lower = BOUNDS[index - 1] if index > 0 else upper / 2
            fraction = (rank - seen) / n
            return lower * math.pow(upper / lower, fraction)
        seen += n
    return BOUNDS[-1] * 2


class RequestMetrics:
    def __init__(self) -> None:
        self.started_at = time.time()
        self.routes: dict[tuple[str, str], RouteStats] = {}
        # Ring of per-second counts: slot = second % RATE_WINDOW_S.
        self._rate_seconds = [0] * RATE_WINDOW_S
        self._rate_counts = [0] * RATE_WINDOW_S

    def record(self, method: str, route: str, status: int | None, elapsed_s: float) -> None:
        key = (method, route)
        stats = self.routes.get(key)
        if stats is None:
            stats = self.routes[key] = RouteStats()
        stats.count += 1
        now = int(time.monotonic())
        slot = now % RATE_WINDOW_S
        if self._rate_seconds[slot] != now:
            self._rate_seconds[slot] = now
            self._rate_counts[slot] = 0
        self._rate_counts[slot] += 1
        if status is None:
            stats.cancelled += 1
            return
        stats.status_classes[min(status // 100, 5)] += 1
        stats.total_s += elapsed_s
        if elapsed_s > stats.max_s:
            stats.max_s = elapsed_s
        stats.buckets[bisect.bisect_left(BOUNDS, elapsed_s)] += 1

    # -- reading ---------------------------------------------------------

    def recent_rate(self) -> float:
        """Requests per second over the last full RATE_WINDOW_S seconds."""
        now = int(time.monotonic())
        recent = sum(
            count
            for second, count in zip(self._rate_seconds, self._rate_counts, strict=True)
            if now - RATE_WINDOW_S <= second < now
        )
        return recent / RATE_WINDOW_S

    def totals(self) -> RouteStats:
        merged = RouteStats()
        for stats in self.routes.values():
            merged.count += stats.count
            merged.total_s += stats.total_s
            merged.max_s = max(merged.max_s, stats.max_s)
            merged.cancelled += stats.cancelled
            for i, n in enumerate(stats.status_classes):
                merged.status_classes[i] += n
            for i, n in enumerate(stats.buckets):
                merged.buckets[i] += n
        return merged

    def summary(self) -> dict[str, Any]:
        total = self.totals()
        uptime = max(time.time() - self.started_at, 1e-9)
        return {
            "since": self.started_at,
            "requests": total.count,
            "errors": total.errors,
            "requests_per_second_1m": round(self.recent_rate(), 3),
            "requests_per_second_since_start": round(total.count / uptime, 3),
            **latency_block(total),
        }

    def per_route(self) -> list[dict[str, Any]]:
        rows = []
        for (method, route), stats in sorted(self.routes.items(), key=lambda kv: -kv[1].count):
            rows.append(
                {
                    "method": method,
                    "route": route,
                    "requests": stats.count,
                    "errors": stats.errors,
                    "cancelled": stats.cancelled,
                    "status": {f"{i}xx": n for i, n in enumerate(stats.status_classes) if i and n},
                    **latency_block(stats),
                }
            )
        return rows


def latency_block(stats: RouteStats) -> dict[str, float | None]:
    finished = stats.count - stats.cancelled

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 3)

    return {
        "mean_ms": ms(stats.total_s / finished) if finished else None,
        "p50_ms": ms(stats.percentile(0.50)),
        "p95_ms": ms(stats.percentile(0.95)),
        "p99_ms": ms(stats.percentile(0.99)),
        "max_ms": ms(stats.max_s) if finished else None,
    }


def route_label(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource
    return UNMATCHED_ROUTE if resource is None else resource.canonical
