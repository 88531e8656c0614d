"""Monitoring: /api/v1/system/{metrics,queue,performance,connections,async,logs},
and at the root /logs and /metrics/prometheus.

The system views take an optional token: anyone gets a summary (status and
overall counts); an administrator gets the full detail (per route, per
queue, per worker, hosts, errors).  ``?detail=full`` from anyone else is
refused.  Request and event-loop figures are this API process's own (the
response says so, with its pid and host); job and queue figures are global.
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.exceptions
from aiohttp import web
from aiohttp_apigami import docs, request_schema

from api.auth.authn import bearer_token, optional_user, require_admin
from api.common_schemas import FORBIDDEN, INVALID, UNAUTHORIZED, envelope
from api.keys import DB_POOL, REDIS, SETTINGS
from api.monitoring.queue_status import WAIT_METHOD, estimated_wait_s, live_workers, queue_counts
from api.monitoring.schemas import (
    LEVELS,
    AsyncStatsSchema,
    ConnectionsSchema,
    DetailQuerySchema,
    LogListSchema,
    LogsQuerySchema,
    PerformanceQuerySchema,
    PerformanceSchema,
    QueueStatusSchema,
    SystemMetricsSchema,
)
from api.monitoring.state import MONITORING
from api.monitoring.system_stats import (
    host_stats,
    identity,
    pool_stats,
    redis_clients_info,
    redis_pool_stats,
    task_summary,
)
from api.responses import ok, plain
from db import monitoring as monitoring_rows
from db.reports import streaming_performance
from t2m.errors import AuthRequired, PermissionDenied
from t2m.logs import LogEntry
from t2m.pagination import pagination
from t2m.queues import QUEUES
from t2m.settings import Settings

# Routes mounted under /api/v1, and routes at the root path.
routes = web.RouteTableDef()
root_routes = web.RouteTableDef()

# Window of the job figures of /system/metrics and /system/queue.
RECENT_WINDOW_S = 3600.0
AUTH_ERRORS: dict[int, dict[str, Any]] = {400: INVALID, 401: UNAUTHORIZED, 403: FORBIDDEN}


async def _full_detail(request: web.Request) -> bool:
    """Whether this caller gets the admin detail."""
    asked = request["data"].get("detail")
    principal = await optional_user(request)
    is_admin = principal is not None and principal.is_admin
    if asked == "full" and not is_admin:
        if principal is None:
            raise AuthRequired("The full detail needs an administrator's token")
        raise PermissionDenied("The full detail is for administrators")
    return is_admin if asked is None else asked == "full"


def _now() -> datetime:
    return datetime.now(UTC)


def _disk_path(settings: Settings) -> Path:
    return settings.storage_root if settings.storage_backend == "local" else settings.var_dir


def _broker_kind(settings: Settings) -> str:
    url = settings.effective_broker_url
    if url.startswith(("amqp://", "amqps://")):
        return "rabbitmq"
    if url.startswith("stub://"):
        return "stub"
    return "redis"


# -- /system/metrics ---------------------------------------------------------


@routes.get("/system/metrics")
@docs(
    tags=["system"],
    summary="CPU, memory, disk, request rate and latency, job throughput and errors",
    description="Optional token. Anyone: overall figures. Admin: per route, per stage, "
    "process and host details, recent failures. Request figures are this API process's.",
    responses={
        200: {"schema": envelope(SystemMetricsSchema, "SystemMetrics"), "description": "Metrics"}
    }
    | AUTH_ERRORS,
)
@request_schema(DetailQuerySchema, location="querystring")
async def system_metrics(request: web.Request) -> web.Response:
    full = await _full_detail(request)
    settings = request.config_dict[SETTINGS]
    monitoring = request.config_dict[MONITORING]
    stats = await asyncio.to_thread(host_stats, _disk_path(settings), monitoring.cpu)
    async with request.config_dict[DB_POOL].acquire() as conn:
        jobs = await monitoring_rows.job_outcomes(conn, RECENT_WINDOW_S)
        if full:
            stages = await monitoring_rows.stage_stats(conn, RECENT_WINDOW_S)
            failures = await monitoring_rows.recent_failures(conn, RECENT_WINDOW_S)
    requests = monitoring.requests.summary()
    data: dict[str, Any] = {
        "status": "ok",
        "detail": "full" if full else "summary",
        "timestamp": _now(),
        "cpu_usage": stats["cpu_usage"],
        "memory_usage": stats["memory_usage"],
        "disk_usage": stats["disk_usage"],
        "uptime_s": stats["process"]["uptime_s"],
        "requests": requests,
        "jobs": jobs,
        "window_hours": RECENT_WINDOW_S / 3600,
    }
    if full:
        workers = await live_workers(request.config_dict[REDIS], settings)
        stats["processes"]["workers_alive"] = len(workers)
        routes_table = monitoring.requests.per_route()
        data |= identity() | {
            "host_stats": stats,
            "routes": routes_table,
            "stages": stages,
            "errors": {
                "http_5xx": requests["errors"],
                "http_5xx_by_route": [
                    {"method": r["method"], "route": r["route"], "errors": r["errors"]}
                    for r in routes_table
                    if r["errors"]
                ],
                "failed_operations": failures,
                "log_records_by_level": monitoring.logs.level_counts(),
            },
        }
    return ok(data)


# -- /system/queue -------------------------------------------------------------


@routes.get("/system/queue")
@docs(
    tags=["system"],
    summary="Queue depths (ready, delayed, in flight, dead letters) and live workers",
    description="Counts are read from the broker's own Redis keys. Optional token. Anyone: "
    "totals. Admin: the broker kind, per queue, per worker, estimated wait.",
    responses={200: {"schema": envelope(QueueStatusSchema, "QueueStatus"), "description": "Status"}}
    | AUTH_ERRORS,
)
@request_schema(DetailQuerySchema, location="querystring")
async def queue_status(request: web.Request) -> web.Response:
    full = await _full_detail(request)
    settings = request.config_dict[SETTINGS]
    broker_redis = request.config_dict[MONITORING].broker_redis
    kind = _broker_kind(settings)
    workers = await live_workers(request.config_dict[REDIS], settings)
    counts = await queue_counts(broker_redis, settings) if broker_redis is not None else {}
    totals = {
        state: sum(c.as_dict()[state] for c in counts.values())
        for state in ("ready", "delayed", "in_flight", "orphaned", "dead_letter")
    }
    status = "unsupported" if broker_redis is None else "ok" if workers else "no_workers"
    data: dict[str, Any] = {
        "status": status,
        "detail": "full" if full else "summary",
        "timestamp": _now(),
        "pending_jobs": totals["ready"] + totals["delayed"],
        "totals": totals,
        "workers_alive": len(workers),
    }
    if full:
        async with request.config_dict[DB_POOL].acquire() as conn:
            means = await monitoring_rows.mean_stage_seconds(conn, RECENT_WINDOW_S)
        per_queue: dict[str, Any] = {}
        for queue in QUEUES:
            queue_counts_ = counts[queue].as_dict() if queue in counts else None
            consuming = sum(1 for w in workers if queue in w["queues"])
            mean = means.get(queue)  # video stages are named after their queues
            per_queue[queue] = {
                **(queue_counts_ or dict.fromkeys(totals, 0)),
                "workers": consuming,
                "mean_stage_s": mean,
                "estimated_wait_s": estimated_wait_s(
                    (queue_counts_ or {}).get("ready", 0), mean, consuming
                ),
            }
        data |= {
            # Which broker is behind the queues is for administrators.
            "broker": kind,
            "queues": per_queue,
            "workers": workers,
            "estimated_wait_method": WAIT_METHOD,
        }
    return ok(data)


# -- /system/performance -------------------------------------------------------


@routes.get("/system/performance")
@docs(
    tags=["system"],
    summary="Performance summary: request latency, job stage durations, streaming",
    description="Optional token. Request latency is this API process's since it started; "
    "job and streaming figures cover the last `hours`. Admin: per route, per stage, streaming.",
    responses={
        200: {"schema": envelope(PerformanceSchema, "Performance"), "description": "Summary"}
    }
    | AUTH_ERRORS,
)
@request_schema(PerformanceQuerySchema, location="querystring")
async def performance(request: web.Request) -> web.Response:
    full = await _full_detail(request)
    hours: int = request["data"]["hours"]
    monitoring = request.config_dict[MONITORING]
    async with request.config_dict[DB_POOL].acquire() as conn:
        jobs = await monitoring_rows.job_outcomes(conn, hours * 3600)
        if full:
            stages = await monitoring_rows.stage_stats(conn, hours * 3600)
            streaming = await streaming_performance(conn, None, hours)
    data: dict[str, Any] = {
        "detail": "full" if full else "summary",
        "timestamp": _now(),
        "window_hours": hours,
        "requests": monitoring.requests.summary(),
        "jobs": jobs,
    }
    if full:
        data |= identity() | {
            "routes": monitoring.requests.per_route(),
            "stages": stages,
            "streaming": streaming,
        }
    return ok(data)


# -- /system/connections -------------------------------------------------------


@routes.get("/system/connections")
@docs(
    tags=["system"],
    summary="Database pool and Redis connection usage",
    description="Optional token. Anyone: whether each answers. Admin: pool sizes, "
    "connections in use, Redis INFO clients.",
    responses={200: {"schema": envelope(ConnectionsSchema, "Connections"), "description": "Usage"}}
    | AUTH_ERRORS,
)
@request_schema(DetailQuerySchema, location="querystring")
async def connections(request: web.Request) -> web.Response:
    full = await _full_detail(request)
    pool = request.config_dict[DB_POOL]
    client = request.config_dict[REDIS]
    database: dict[str, Any] = {"status": "ok"}
    redis_info: dict[str, Any] = {"status": "ok"}
    try:
        clients = await redis_clients_info(client)
    except (redis.exceptions.RedisError, OSError) as exc:
        redis_info = {"status": "unavailable", "error": type(exc).__name__}
        clients = None
    if full:
        database |= pool_stats(pool)
        redis_info |= {"pool": redis_pool_stats(client)}
        if clients is not None:
            redis_info |= {"server_clients": clients}
    data: dict[str, Any] = {
        "detail": "full" if full else "summary",
        "timestamp": _now(),
        "database": database,
        "redis": redis_info,
    }
    if full:
        data |= identity()
    return ok(data)


# -- /system/async -------------------------------------------------------------


@routes.get("/system/async")
@docs(
    tags=["system"],
    summary="Event-loop lag and running tasks of this API process",
    description="Lag: how late a wake-up scheduled every 0.5 s ran, over the last two "
    "minutes. Optional token; admin adds tasks by coroutine.",
    responses={200: {"schema": envelope(AsyncStatsSchema, "AsyncStats"), "description": "Figures"}}
    | AUTH_ERRORS,
)
@request_schema(DetailQuerySchema, location="querystring")
async def async_stats(request: web.Request) -> web.Response:
    full = await _full_detail(request)
    lag = request.config_dict[MONITORING].loop.summary()
    tasks = task_summary()
    data: dict[str, Any] = {
        "detail": "full" if full else "summary",
        "timestamp": _now(),
        "event_loop_lag": lag if full else {k: lag[k] for k in ("p95_ms", "max_ms")},
        "tasks": tasks if full else {"running": tasks["running"]},
    }
    if full:
        data |= identity()
    return ok(data)


# -- /logs -------------------------------------------------------------------------


def _log_page(request: web.Request) -> dict[str, Any]:
    query = request["data"]
    monitoring = request.config_dict[MONITORING]
    minimum = _LEVEL_NUMBERS[query["level"]] if "level" in query else 0
    since = query["since"].timestamp() if "since" in query else None
    until = query["until"].timestamp() if "until" in query else None
    prefix = query.get("logger")
    request_id = query.get("request_id")

    def wanted(entry: LogEntry) -> bool:
        return (
            entry.levelno >= minimum
            and (since is None or entry.created >= since)
            and (until is None or entry.created <= until)
            and (prefix is None or entry.logger.startswith(prefix))
            and (request_id is None or entry.request_id == request_id)
        )

    matches = [e for e in reversed(monitoring.logs.snapshot()) if wanted(e)]
    page, per_page = query["page"], query["items_per_page"]
    chosen = matches[(page - 1) * per_page : page * per_page]
    return identity() | {
        "capacity": monitoring.logs.records.maxlen or 0,
        "items": [
            {
                "id": e.id,
                "timestamp": datetime.fromtimestamp(e.created, UTC),
                "level": e.level,
                "logger": e.logger,
                "message": e.message,
                "request_id": e.request_id,
                "thread": e.thread,
                "exc": e.exc,
            }
            for e in chosen
        ],
        "pagination": pagination(page, per_page, len(matches)),
    }


_LEVEL_NUMBERS = {name: number for name, number in zip(LEVELS, (10, 20, 30, 40, 50), strict=True)}
_LOGS_SUMMARY = "Recent log records of this API process, newest first (admin)"
_LOGS_DESCRIPTION = (
    "An in-memory buffer of this process's last records; filter by minimum level, "
    "time (ISO-8601), logger name prefix, request id."
)


@root_routes.get("/logs")
@docs(
    tags=["system"],
    summary=_LOGS_SUMMARY,
    description=_LOGS_DESCRIPTION,
    responses={200: {"schema": LogListSchema, "description": "A page"}} | AUTH_ERRORS,
)
@request_schema(LogsQuerySchema, location="querystring")
async def logs(request: web.Request) -> web.Response:
    await require_admin(request)
    return plain(_log_page(request))


@routes.get("/system/logs")
@docs(
    tags=["system"],
    summary=_LOGS_SUMMARY,
    description=_LOGS_DESCRIPTION,
    responses={200: {"schema": envelope(LogListSchema, "LogList"), "description": "A page"}}
    | AUTH_ERRORS,
)
@request_schema(LogsQuerySchema, location="querystring")
async def system_logs(request: web.Request) -> web.Response:
    await require_admin(request)
    return ok(_log_page(request))


# -- /metrics/prometheus -------------------------------------------------------


def _same_secret(given: str, expected: str) -> bool:
    # Compared as bytes: compare_digest refuses non-ASCII str, and a header
    # may carry any byte (surrogateescape keeps them comparable, never equal).
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


async def _require_scraper(request: web.Request) -> None:
    """The configured scrape token, or an administrator's token."""
    expected = request.config_dict[SETTINGS].metrics_token
    token = bearer_token(request)
    if expected and token is not None and _same_secret(token, expected):
        return
    await require_admin(request)


@root_routes.get("/metrics/prometheus")
@docs(
    tags=["system"],
    summary="Monitoring figures in Prometheus text format (scrape token or admin)",
    description="Send `Authorization: Bearer <METRICS_TOKEN>` (or an admin token). Request "
    "and process figures are this API process's; queue, worker and job gauges are global.",
    responses={
        200: {"description": "Prometheus text exposition format 0.0.4"},
        401: UNAUTHORIZED,
        403: FORBIDDEN,
    },
)
async def prometheus(request: web.Request) -> web.Response:
    await _require_scraper(request)
    settings = request.config_dict[SETTINGS]
    monitoring = request.config_dict[MONITORING]
    gathered: dict[str, Any] = {
        "db_pool": pool_stats(request.config_dict[DB_POOL]),
        "redis_pool": redis_pool_stats(request.config_dict[REDIS]),
    }
    if monitoring.broker_redis is not None:
        counts = await queue_counts(monitoring.broker_redis, settings)
        gathered["queues"] = {q: c.as_dict() for q, c in counts.items()}
    workers = await live_workers(request.config_dict[REDIS], settings)
    gathered["workers"] = {q: sum(1 for w in workers if q in w["queues"]) for q in QUEUES}
    async with request.config_dict[DB_POOL].acquire() as conn:
        gathered["jobs"] = await monitoring_rows.job_outcomes(conn, RECENT_WINDOW_S)
    body = monitoring.prometheus.render(gathered)
    response = web.Response(body=body)
    response.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
    return response
