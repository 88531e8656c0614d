"""Build the Dramatiq broker from settings.

``redis://`` (default: ``REDIS_URL``) gives the Redis broker, ``amqp://`` RabbitMQ,
``stub://`` an in-memory ``StubBroker`` for unit tests.  The web process builds
one too, only to enqueue messages by name (see :mod:`t2m.enqueue`).
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    AsyncIO,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from t2m.errors import ConfigError
from t2m.settings import Settings


def _middleware() -> list[dramatiq.Middleware]:
    # Prometheus middleware is left out on purpose: it forks an exposition
    # server per worker; T2M reports its own metrics through the API.
    return [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(),
        # Lets a stage know whether this attempt is its last.
        CurrentMessage(),
        # Runs ``async def`` actors on one event loop per worker process.
        AsyncIO(),
    ]


def build_broker(settings: Settings) -> dramatiq.Broker:
    url = settings.effective_broker_url
    if url.startswith("stub://"):
        return StubBroker(middleware=_middleware())
    if url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(
            url=url,
            namespace=f"{settings.redis_namespace}-dramatiq",
            middleware=_middleware(),
            heartbeat_timeout=settings.broker_heartbeat_timeout_ms,
            maintenance_chance=settings.broker_maintenance_chance,
        )
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=_middleware())
    raise ConfigError(f"unsupported broker URL scheme: {url.split('://')[0]!r}")
