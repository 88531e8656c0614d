"""What an app keeps for monitoring, and the context that starts and stops it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.typedefs import Handler

from api.keys import REDIS, SETTINGS
from api.monitoring.prometheus import PrometheusExporter
from api.monitoring.request_metrics import RequestMetrics, route_label
from api.monitoring.system_stats import CpuSampler, LoopMonitor
from t2m.broker import broker_redis_url
from t2m.logs import RecentLogs, install_recent_logs
from t2m.redis_client import create_redis


@dataclass
class Monitoring:
    requests: RequestMetrics
    loop: LoopMonitor
    cpu: CpuSampler
    logs: RecentLogs
    prometheus: PrometheusExporter
    # The Redis the Dramatiq broker uses: the app's own client unless
    # BROKER_URL points elsewhere; None when the broker is not Redis.
    broker_redis: aioredis.Redis | None


MONITORING = web.AppKey("monitoring", Monitoring)


async def monitoring_ctx(app: web.Application) -> AsyncIterator[None]:
    """Needs ``_redis`` before it (cleanup_ctx order)."""
    settings = app[SETTINGS]
    requests = RequestMetrics()
    loop = LoopMonitor()
    logs = install_recent_logs()
    broker_url = broker_redis_url(settings)
    own_broker_client: aioredis.Redis | None = None
    broker_redis: aioredis.Redis | None
    if settings.effective_broker_url == settings.redis_url:
        broker_redis = app[REDIS]
    elif broker_url is not None:
        own_broker_client = create_redis(settings.with_overrides(redis_url=broker_url))
        broker_redis = own_broker_client
    else:
        broker_redis = None
    cpu = CpuSampler()
    app[MONITORING] = Monitoring(
        requests, loop, cpu, logs, PrometheusExporter(requests, loop, logs), broker_redis
    )
    loop.start()
    cpu.start()
    yield
    await cpu.stop()
    await loop.stop()
    if own_broker_client is not None:
        await own_broker_client.aclose()


@web.middleware
async def request_metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Outermost: the status seen here is the one the client gets (error
    # envelopes included), and the time covers every inner middleware.
    started = time.perf_counter()
    status: int | None = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # redirects and the like pass through
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = None
        raise
    finally:
        request.app[MONITORING].requests.record(
            request.method, route_label(request), status, time.perf_counter() - started
        )
