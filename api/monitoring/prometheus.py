"""The monitoring figures in Prometheus text format, one registry per app.

Nothing extra is recorded per request: a custom collector converts the
request-metrics table (``api/request_metrics.py``) at scrape time, and the
handler gathers the figures that need I/O (queue depths, pools) just before
rendering.  The registry is the app's own, never the global one, so several
apps in one process (tests) never collide.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from api.monitoring.request_metrics import BOUNDS, PROMETHEUS_BOUNDS, RequestMetrics
from api.monitoring.system_stats import LoopMonitor
from t2m.logs import RecentLogs

# Fine bucket index of each coarse (exposed) bound.
_COARSE_INDEX = [BOUNDS.index(b) for b in PROMETHEUS_BOUNDS]


class _T2MCollector(Collector):
    def __init__(
        self, requests: RequestMetrics, loop: LoopMonitor, logs: RecentLogs | None
    ) -> None:
        self.requests = requests
        self.loop = loop
        self.logs = logs
        # Figures gathered by the scrape handler right before rendering.
        self.gathered: dict[str, Any] = {}

    def collect(self) -> Iterator[Metric]:
        yield from self._requests()
        lag = self.loop.summary()
        loop_lag = GaugeMetricFamily(
            "t2m_event_loop_lag_seconds",
            "Event-loop lag over the last two minutes",
            labels=["stat"],
        )
        for stat in ("p95", "max"):
            value = lag[f"{stat}_ms"]
            if value is not None:
                loop_lag.add_metric([stat], value / 1000)
        yield loop_lag
        if self.logs is not None:
            records = CounterMetricFamily(
                "t2m_log_records", "Log records emitted by this process", labels=["level"]
            )
            for level, n in sorted(self.logs.level_counts().items()):
                records.add_metric([level], n)
            yield records
        yield from self._gathered()

    def _requests(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "t2m_http_requests",
            "HTTP requests by route pattern and status class",
            labels=["method", "route", "status"],
        )
        latency = HistogramMetricFamily(
            "t2m_http_request_duration_seconds",
            "HTTP request latency by route pattern",
            labels=["method", "route"],
        )
        for (method, route), stats in list(self.requests.routes.items()):
            for index, n in enumerate(stats.status_classes):
                if n:
                    requests.add_metric([method, route, f"{index}xx"], n)
            if stats.cancelled:
                requests.add_metric([method, route, "cancelled"], stats.cancelled)
            cumulative, buckets, fine = 0, [], stats.buckets
            previous = -1
            for bound, index in zip(PROMETHEUS_BOUNDS, _COARSE_INDEX, strict=True):
                cumulative += sum(fine[previous + 1 : index + 1])
                previous = index
                buckets.append((_le(bound), cumulative))
            buckets.append(("+Inf", stats.count - stats.cancelled))
            latency.add_metric([method, route], buckets, stats.total_s)
        yield requests
        yield latency

    def _gathered(self) -> Iterator[Metric]:
        gathered = self.gathered
        if "queues" in gathered:
            messages = GaugeMetricFamily(
                "t2m_queue_messages", "Messages per queue and state", labels=["queue", "state"]
            )
            for queue, counts in gathered["queues"].items():
                for state, n in counts.items():
                    messages.add_metric([queue, state], n)
            yield messages
        if "workers" in gathered:
            workers = GaugeMetricFamily(
                "t2m_workers_alive", "Live worker processes per queue", labels=["queue"]
            )
            for queue, n in gathered["workers"].items():
                workers.add_metric([queue], n)
            yield workers
        if "jobs" in gathered:
            jobs = GaugeMetricFamily(
                "t2m_jobs",
                "Jobs queued or processing now; completed, failed, cancelled in the last hour",
                labels=["status"],
            )
            for status, n in gathered["jobs"].items():
                jobs.add_metric([status], n)
            yield jobs
        if "db_pool" in gathered:
            pool = GaugeMetricFamily(
                "t2m_db_pool_connections", "Database pool connections", labels=["state"]
            )
            for state in ("in_use", "idle", "max_size"):
                pool.add_metric([state], gathered["db_pool"][state])
            yield pool
        if "redis_pool" in gathered:
            redis_pool = GaugeMetricFamily(
                "t2m_redis_pool_connections", "Redis client pool connections", labels=["state"]
            )
            for state in ("in_use", "available"):
                redis_pool.add_metric([state], gathered["redis_pool"][state])
            yield redis_pool


def _le(bound: float) -> str:
    return f"{bound:.6g}"


class PrometheusExporter:
    def __init__(
        self, requests: RequestMetrics, loop: LoopMonitor, logs: RecentLogs | None
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._collector = _T2MCollector(requests, loop, logs)
        self.registry.register(self._collector)
        # process_cpu_seconds_total, process_resident_memory_bytes, open fds …
        ProcessCollector(namespace="t2m", registry=self.registry)

    def render(self, gathered: dict[str, Any]) -> bytes:
        # Synchronous from here to the end: no other scrape can interleave.
        self._collector.gathered = gathered
        try:
            return generate_latest(self.registry)
        finally:
            self._collector.gathered = {}
