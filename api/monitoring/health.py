"""Component health: database, Redis, storage (required) and workers.

Every check runs concurrently with its own time limit and reports its
latency; a required component that is down makes the service ``unhealthy``
(HTTP 503), missing workers make it ``degraded`` (jobs wait, nothing fails).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from api.auth.authn import optional_user
from api.keys import DB_POOL, REDIS, SETTINGS, STORAGE
from t2m.errors import T2MError
from t2m.settings import Settings
from t2m.storage import Storage
from t2m.worker_heartbeats import read_heartbeats
from t2m.worker_modules import served_queues

CHECK_TIMEOUT_S = 2.0
VERSION = "0.1.0"
# A report this fresh is answered again: load balancers and monitors probing
# every instance several times a second must not become as many database,
# Redis, storage and heartbeat-scan round trips (each an extra load on the
# very dependencies being checked).
REPORT_MAX_AGE_S = 1.0


async def _timed(check: Callable[[], Awaitable[dict[str, Any] | None]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        extra = await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
        result: dict[str, Any] = {"status": "healthy", **(extra or {})}
    except TimeoutError:
        result = {"status": "unhealthy", "error": f"no answer within {CHECK_TIMEOUT_S:.0f} s"}
    except Exception as exc:  # any failure of a dependency is a health finding
        result = {"status": "unhealthy", "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


async def system_health(
    settings: Settings, pool: asyncpg.Pool, client: aioredis.Redis, store: Storage
) -> dict[str, Any]:
    async def database() -> None:
        async with pool.acquire(timeout=CHECK_TIMEOUT_S) as conn:
            await conn.fetchval("SELECT 1")

    async def redis() -> None:
        await client.ping()

    async def storage() -> dict[str, Any]:
        await store.health()
        return {"backend": store.describe().get("backend")}

    async def workers() -> dict[str, Any]:
        beats = await read_heartbeats(client, settings)
        served = {queue for beat in beats for queue in beat.get("queues", [])}
        missing = [queue for queue in served_queues() if queue not in served]
        return {
            "alive": len(beats),
            "queues_without_workers": missing,
            "workers": [
                {"host": b.get("host"), "pid": b.get("pid"), "queues": b.get("queues", [])}
                for b in beats
            ],
        }

    checks = await asyncio.gather(_timed(database), _timed(redis), _timed(storage), _timed(workers))
    components = dict(zip(("database", "redis", "storage", "workers"), checks, strict=True))
    worker_info = components["workers"]
    if worker_info["status"] == "healthy" and (
        worker_info["alive"] == 0 or worker_info["queues_without_workers"]
    ):
        worker_info["status"] = "degraded"
    required_down = any(
        components[name]["status"] != "healthy" for name in ("database", "redis", "storage")
    )
    if required_down:
        overall = "unhealthy"
    elif worker_info["status"] != "healthy":
        overall = "degraded"
    else:
        overall = "healthy"
    return {
        "status": overall,
        "timestamp": datetime.now(UTC),
        "version": VERSION,
        "components": components,
    }


def public_view(report: dict[str, Any]) -> dict[str, Any]:
    """The report as anyone but an administrator sees it: each component's
    status and latency and the number of live workers — no version, worker
    hosts or pids, storage backend or error texts (which name hosts, paths and
    library versions).  Administrators get the whole report."""
    components: dict[str, Any] = {}
    for name, component in report["components"].items():
        view = {"status": component["status"], "latency_ms": component.get("latency_ms")}
        if name == "workers" and "alive" in component:
            view["alive"] = component["alive"]
        components[name] = view
    return {"status": report["status"], "timestamp": report["timestamp"], "components": components}


async def caller_is_admin(request: web.Request) -> bool:
    """Whether the caller shows an administrator's token.  Health answers
    whatever the token: a probe must never fail because of a stale header, nor
    because the database that token checks read is the component that is down
    (the administrator then gets the public view; the logs have the rest)."""
    try:
        principal = await optional_user(request)
    except (T2MError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        return False
    return principal is not None and principal.is_admin


async def report_for(request: web.Request) -> tuple[dict[str, Any], bool]:
    """The latest report as this caller may see it, and whether it is the full one."""
    report = await request.app[HEALTH_PROBE].report()
    if await caller_is_admin(request):
        return report, True
    return public_view(report), False


def liveness() -> dict[str, Any]:
    """The process answers: no dependency is touched, so an orchestrator's
    liveness probe restarts a wedged process, never a healthy one whose
    database is briefly away."""
    return {"status": "alive", "timestamp": datetime.now(UTC)}


class HealthProbe:
    """The latest health report, at most ``REPORT_MAX_AGE_S`` old; concurrent
    callers share one check instead of each running their own."""

    def __init__(
        self, settings: Settings, pool: asyncpg.Pool, redis: aioredis.Redis, storage: Storage
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._redis = redis
        self._storage = storage
        self._report: dict[str, Any] | None = None
        self._checked_at = 0.0
        self._running: asyncio.Future[dict[str, Any]] | None = None

    async def report(self) -> dict[str, Any]:
        if self._report is not None and time.monotonic() - self._checked_at < REPORT_MAX_AGE_S:
            return self._report
        if self._running is None:
            self._running = asyncio.ensure_future(self._check())
        # shield(): one caller going away must not cancel the others' check.
        return await asyncio.shield(self._running)

    async def _check(self) -> dict[str, Any]:
        try:
            report = await system_health(self._settings, self._pool, self._redis, self._storage)
            self._report, self._checked_at = report, time.monotonic()
            return report
        finally:
            self._running = None


HEALTH_PROBE = web.AppKey("health_probe", HealthProbe)


async def health_probe_ctx(app: web.Application) -> AsyncIterator[None]:
    app[HEALTH_PROBE] = HealthProbe(app[SETTINGS], app[DB_POOL], app[REDIS], app[STORAGE])
    yield
