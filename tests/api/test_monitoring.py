"""System metrics, performance, connections, event loop, logs and Prometheus."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.monitoring.prometheus import PrometheusExporter
from api.monitoring.request_metrics import BOUNDS, RequestMetrics
from api.monitoring.system_stats import LoopMonitor
from t2m.settings import Settings
from tests.api.monitoring_helpers import job_with_stage_times
from tests.support.polling import until


async def test_requests_are_counted_per_route_pattern_not_raw_path(
    client: Any, make_user: Any
) -> None:
    admin = await make_user("ADMIN")
    ids = [f"job_{secrets.token_hex(4)}" for _ in range(3)]
    for job_id in ids:
        await client.get(f"/api/v1/jobs/{job_id}", headers=admin.headers)
    await client.get("/api/v1/no/such/endpoint")

    response = await client.get("/api/v1/system/metrics", headers=admin.headers)
    assert response.status == 200, await response.text()
    data = (await response.json())["data"]
    assert data["detail"] == "full" and data["scope"] == "this API process"
    assert isinstance(data["pid"], int) and data["host"]
    by_route = {(r["method"], r["route"]): r for r in data["routes"]}
    jobs = by_route[("GET", "/api/v1/jobs/{job_id}")]
    assert jobs["requests"] == 3 and jobs["status"] == {"4xx": 3}
    assert jobs["p50_ms"] is not None and jobs["p50_ms"] <= jobs["max_ms"] * 1.5
    assert by_route[("GET", "<unmatched>")]["requests"] == 1
    # No raw path with an id became a label.
    assert not [r for r in data["routes"] if any(i in r["route"] for i in ids)]
    assert data["requests"]["requests"] >= 5  # the logins, the jobs, the 404
    for figure in ("cpu_usage", "memory_usage", "disk_usage"):
        assert 0 <= data[figure] <= 100
    assert data["host_stats"]["processes"]["host_total"] > 0
    assert data["host_stats"]["process"]["rss_bytes"] > 0


async def test_metrics_summary_for_everyone_detail_for_admins(client: Any, make_user: Any) -> None:
    user = await make_user()
    for headers in (dict[str, str](), user.headers):
        response = await client.get("/api/v1/system/metrics", headers=headers)
        assert response.status == 200
        data = (await response.json())["data"]
        assert data["detail"] == "summary"
        assert {"cpu_usage", "memory_usage", "requests", "jobs"} <= data.keys()
        for admin_only in ("routes", "host_stats", "errors", "stages", "host", "pid"):
            assert admin_only not in data
    for path in (
        "/api/v1/system/metrics",
        "/api/v1/system/performance",
        "/api/v1/system/connections",
        "/api/v1/system/async",
    ):
        refused = await client.get(path + "?detail=full", headers=user.headers)
        assert refused.status == 403, path
        assert (await client.get(path + "?detail=full")).status == 401, path


async def test_job_throughput_and_failures_per_stage(
    client: Any, make_user: Any, db: asyncpg.Pool
) -> None:
    admin = await make_user("ADMIN")
    await job_with_stage_times(
        db,
        admin.id,
        {"parse": 0, "storyboard": 2, "render": 5, "thumbnails": 15},
        completed_after_s=17,
    )
    failed = await job_with_stage_times(db, admin.id, {"parse": 0}, completed_after_s=1)
    async with db.acquire() as conn:
        await conn.execute("UPDATE jobs SET status = 'failed' WHERE id = $1", failed)
        await conn.execute(
            "INSERT INTO failed_operations (stage, job_id, error, permanent)"
            " VALUES ('parse', $1, 'bad script', true)",
            failed,
        )
    data = (await (await client.get("/api/v1/system/metrics", headers=admin.headers)).json())[
        "data"
    ]
    stages = data["stages"]
    assert stages["render"]["completed"] == 1 and stages["render"]["duration_s"]["p50"] == 10.0
    assert stages["storyboard"]["duration_s"]["mean"] == 3.0
    assert stages["thumbnails"]["duration_s"]["max"] == 2.0
    # The failed job's parse never ended: started, not completed, failed.
    assert stages["parse"]["started"] == 2 and stages["parse"]["completed"] == 1
    assert stages["parse"]["failed"] == 1 and stages["parse"]["failed_permanently"] == 1
    assert data["jobs"]["completed"] == 1 and data["jobs"]["failed"] == 1
    [failure] = data["errors"]["failed_operations"]
    assert failure["job_id"] == failed and failure["error"] == "bad script"


async def test_performance_window_and_validation(
    client: Any, make_user: Any, db: asyncpg.Pool
) -> None:
    admin = await make_user("ADMIN")
    await job_with_stage_times(
        db,
        admin.id,
        {"parse": 0, "storyboard": 1, "render": 2, "thumbnails": 6},
        completed_after_s=7,
    )
    response = await client.get("/api/v1/system/performance?hours=24", headers=admin.headers)
    assert response.status == 200, await response.text()
    data = (await response.json())["data"]
    assert data["window_hours"] == 24
    assert data["stages"]["render"]["duration_s"]["p95"] == 4.0
    assert data["streaming"]["window_hours"] == 24
    assert data["requests"]["requests"] >= 1 and data["routes"]

    public = await (await client.get("/api/v1/system/performance")).json()
    assert public["data"]["window_hours"] == 1 and "stages" not in public["data"]
    assert public["data"]["jobs"]["completed"] == 1

    for bad in ("0", "-1", "abc", "100000", "1.5"):
        response = await client.get(f"/api/v1/system/performance?hours={bad}")
        assert response.status == 400, bad
        body = await response.json()
        assert body["error"]["code"] == "VALIDATION_ERROR" and "hours" in body["error"]["details"]


async def test_connections_report_pool_usage(
    client: Any, make_user: Any, settings: Settings
) -> None:
    admin = await make_user("ADMIN")
    data = (await (await client.get("/api/v1/system/connections", headers=admin.headers)).json())[
        "data"
    ]
    database = data["database"]
    assert database["max_size"] == settings.db_pool_max
    assert database["size"] == database["idle"] + database["in_use"]
    assert data["redis"]["status"] == "ok"
    assert data["redis"]["server_clients"]["connected_clients"] >= 1
    assert data["redis"]["pool"]["in_use"] + data["redis"]["pool"]["available"] >= 1

    public = (await (await client.get("/api/v1/system/connections")).json())["data"]
    assert public["database"] == {"status": "ok"} and public["redis"] == {"status": "ok"}


async def test_event_loop_lag_is_sampled(client: Any, make_user: Any) -> None:
    admin = await make_user("ADMIN")

    async def sampled() -> dict[str, Any]:
        response = await client.get("/api/v1/system/async", headers=admin.headers)
        return dict((await response.json())["data"])

    async def with_samples() -> dict[str, Any] | None:
        data = await sampled()
        return data if data["event_loop_lag"]["samples"] else None

    # The sampler wakes every 0.5 s.
    data = await until(with_samples, "a loop lag sample", interval_s=0.1)
    assert data["event_loop_lag"]["samples"] >= 1
    assert data["event_loop_lag"]["max_ms"] >= data["event_loop_lag"]["p95_ms"] >= 0
    assert data["tasks"]["running"] >= 1
    assert any(t["coroutine"].endswith("LoopMonitor._run") for t in data["tasks"]["by_coroutine"])


async def test_loop_monitor_sees_a_blocked_loop() -> None:
    monitor = LoopMonitor(interval_s=0.05)
    monitor.start()
    await asyncio.sleep(0.06)
    time.sleep(0.3)  # noqa: ASYNC251 (blocks the loop on purpose)
    await asyncio.sleep(0.06)
    await monitor.stop()
    assert monitor.summary()["max_ms"] >= 200


def test_percentiles_come_from_the_right_buckets() -> None:
    metrics = RequestMetrics()
    for _ in range(90):
        metrics.record("GET", "/a", 200, 0.010)
    for _ in range(10):
        metrics.record("GET", "/a", 500, 1.0)
    stats = metrics.routes[("GET", "/a")]
    p50, p99 = stats.percentile(0.5), stats.percentile(0.99)
    assert p50 is not None and p99 is not None
    # Each estimate lies within the √2-wide bucket holding the true value.
    assert 0.010 / 2**0.5 <= p50 <= 0.010 * 2**0.5
    assert 1.0 / 2**0.5 <= p99 <= 1.0 * 2**0.5
    assert stats.errors == 10 and sum(stats.buckets) == 100
    assert BOUNDS[0] == pytest.approx(1e-4)


async def test_logs_filter_paginate_and_are_admin_only(
    client: Any, make_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    admin, user = await make_user("ADMIN"), await make_user()
    marker = secrets.token_hex(6)
    logger = logging.getLogger("t2m.monitoring_test")
    caplog.set_level(logging.INFO, logger="t2m.monitoring_test")
    logger.info("info %s", marker)
    logger.warning("warning %s", marker)
    logger.error("error %s", marker)

    response = await client.get(
        "/logs?level=warning&logger=t2m.monitoring_test", headers=admin.headers
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["scope"] == "this API process"
    mine = [r for r in body["items"] if marker in r["message"]]
    assert [r["level"] for r in mine] == ["ERROR", "WARNING"]  # newest first
    assert mine[0]["logger"] == "t2m.monitoring_test"

    page = await client.get(
        "/api/v1/system/logs?logger=t2m.monitoring_test&items_per_page=1&page=2",
        headers=admin.headers,
    )
    data = (await page.json())["data"]
    assert data["pagination"]["total_items"] >= 3 and len(data["items"]) == 1
    assert data["pagination"]["has_previous"] is True

    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    later = await client.get(f"/logs?since={future.replace('+', '%2B')}", headers=admin.headers)
    assert (await later.json())["pagination"]["total_items"] == 0
    naive = await client.get(
        "/logs?since=2000-01-01T00:00:00&logger=t2m.monitoring_test", headers=admin.headers
    )
    assert (await naive.json())["pagination"]["total_items"] >= 3

    assert (await client.get("/logs", headers=user.headers)).status == 403
    assert (await client.get("/logs")).status == 401
    assert (await client.get("/api/v1/system/logs", headers=user.headers)).status == 403
    for bad in (
        "level=LOUD",
        "since=yesterday",
        "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
        "page=0",
    ):
        response = await client.get(f"/logs?{bad}", headers=admin.headers)
        assert response.status == 400, bad
        assert (await response.json())["error"]["code"] == "VALIDATION_ERROR"


async def test_logs_filter_by_request_id(
    client: Any, make_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    admin = await make_user("ADMIN")
    caplog.set_level(logging.INFO, logger="t2m.access")
    request_id = "mon-" + secrets.token_hex(6)
    await client.get("/api/v1/system/health", headers={"X-Request-ID": request_id})
    response = await client.get(f"/logs?request_id={request_id}", headers=admin.headers)
    [record] = (await response.json())["items"]
    assert record["logger"] == "t2m.access" and "/api/v1/system/health" in record["message"]
    assert record["request_id"] == request_id


async def test_prometheus_exposition(client: Any, make_user: Any, settings: Settings) -> None:
    admin, user = await make_user("ADMIN"), await make_user()
    for _ in range(2):
        await client.get("/api/v1/system/health")
    assert (await client.get("/metrics/prometheus")).status == 401
    assert (await client.get("/metrics/prometheus", headers=user.headers)).status == 403

    response = await client.get("/metrics/prometheus", headers=admin.headers)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    requests = {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in families["t2m_http_requests"].samples
        if s.name == "t2m_http_requests_total"
    }
    health = ("GET", "/api/v1/system/health")
    assert requests[(*health, "2xx")] == 2
    latency = families["t2m_http_request_duration_seconds"].samples
    count = [
        s.value
        for s in latency
        if s.name.endswith("_count") and (s.labels["method"], s.labels["route"]) == health
    ]
    inf = [
        s.value
        for s in latency
        if s.name.endswith("_bucket")
        and s.labels.get("le") == "+Inf"
        and (s.labels["method"], s.labels["route"]) == health
    ]
    assert count == [2] and inf == [2]
    queue = {
        (s.labels["queue"], s.labels["state"]): s.value
        for s in families["t2m_queue_messages"].samples
    }
    assert queue[("render", "ready")] == 0
    assert "t2m_process_resident_memory_bytes" in families
    assert {s.labels["state"] for s in families["t2m_db_pool_connections"].samples} == {
        "in_use",
        "idle",
        "max_size",
    }


async def test_prometheus_scrape_token(
    db: asyncpg.Pool, settings: Settings, aiohttp_client: Any
) -> None:
    token = secrets.token_urlsafe(24)
    scraped = await aiohttp_client(create_app(settings.with_overrides(metrics_token=token)))
    good = await scraped.get("/metrics/prometheus", headers={"Authorization": f"Bearer {token}"})
    assert good.status == 200
    assert "t2m_http_requests_total" in await good.text()
    bad = await scraped.get("/metrics/prometheus", headers={"Authorization": "Bearer nope"})
    assert bad.status == 401
    non_ascii = await scraped.get("/metrics/prometheus", headers={"Authorization": "Bearer nöpe"})
    assert non_ascii.status == 401


def test_registries_are_per_app() -> None:
    # Two exporters in one process (as two apps in a test run) must not clash.
    first = PrometheusExporter(RequestMetrics(), LoopMonitor(), None)
    second = PrometheusExporter(RequestMetrics(), LoopMonitor(), None)
    first._collector.requests.record("GET", "/x", 200, 0.001)
    assert b'route="/x"' in first.render({})
    assert b'route="/x"' not in second.render({})
