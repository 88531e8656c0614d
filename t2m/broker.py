"""The Dramatiq broker: built from settings, and where its Redis keys are.

``redis://`` (default: ``REDIS_URL``) gives the Redis broker, ``amqp://`` RabbitMQ,
``stub://`` an in-memory ``StubBroker`` for unit tests.  The web process builds
one too, only to enqueue messages by name (see :mod:`t2m.enqueue`).

Key layout of Dramatiq's Redis broker (``dramatiq/brokers/redis/dispatch.lua``),
under the broker namespace ``<ns>-dramatiq`` (:class:`DramatiqKeys`):

- ``<bns>:<queue>``              list of ready message ids
- ``<bns>:<queue>.msgs``         hash id → message (ready and fetched ones)
- ``<bns>:<queue>.DQ.msgs``      hash of delayed messages (waiting for their
  eta, whether still listed in ``<queue>.DQ`` or already held by a worker)
- ``<bns>:<queue>.XQ``           sorted set of dead-lettered ids
- ``<bns>:__acks__.<broker id>.<queue>``  set of ids a worker fetched and has
  not acknowledged yet (in flight, prefetched ones included)
- ``<bns>:__heartbeats__``       sorted set broker id → last call (ms)

The API's queue report and the stuck-job reaper read these keys; nothing
writes them but Dramatiq.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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


BrokerKind = Literal["stub", "redis", "rabbitmq"]
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
AMQP_SCHEMES = ("amqp://", "amqps://")


def broker_kind(url: str) -> BrokerKind:
    """Which broker a URL selects, by its scheme."""
    if url.startswith("stub://"):
        return "stub"
    if url.startswith(REDIS_SCHEMES):
        return "redis"
    if url.startswith(AMQP_SCHEMES):
        return "rabbitmq"
    raise ConfigError(f"unsupported broker URL scheme: {url.split('://')[0]!r}")


def broker_redis_url(settings: Settings) -> str | None:
    """The Redis URL the broker keeps its messages in; None when it is not Redis."""
    url = settings.effective_broker_url
    return url if url.startswith(REDIS_SCHEMES) else None


def broker_namespace(settings: Settings) -> str:
    """The prefix of the broker's keys, apart from T2M's own ``<ns>:`` keys."""
    return f"{settings.redis_namespace}-dramatiq"


@dataclass(frozen=True)
class DramatiqKeys:
    """Dramatiq's Redis key names (layout in the module docstring)."""

    namespace: str

    @staticmethod
    def of(settings: Settings) -> DramatiqKeys:
        return DramatiqKeys(broker_namespace(settings))

    def ready(self, queue: str) -> str:
        return f"{self.namespace}:{queue}"

    def messages(self, queue: str) -> str:
        return f"{self.namespace}:{queue}.msgs"

    def delayed_messages(self, queue: str) -> str:
        return f"{self.namespace}:{queue}.DQ.msgs"

    def dead_letters(self, queue: str) -> str:
        return f"{self.namespace}:{queue}.XQ"

    @property
    def acks_prefix(self) -> str:
        """Followed by ``<broker id>.<queue>``."""
        return f"{self.namespace}:__acks__."

    @property
    def heartbeats(self) -> str:
        return f"{self.namespace}:__heartbeats__"


def build_broker(settings: Settings) -> dramatiq.Broker:
    url = settings.effective_broker_url
    kind = broker_kind(url)
    if kind == "stub":
        return StubBroker(middleware=_middleware())
    if kind == "redis":
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(
            url=url,
            namespace=broker_namespace(settings),
            middleware=_middleware(),
            heartbeat_timeout=settings.broker_heartbeat_timeout_ms,
            maintenance_chance=settings.broker_maintenance_chance,
        )
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    return RabbitmqBroker(url=url, middleware=_middleware())
