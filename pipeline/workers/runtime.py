"""Worker-process set-up: settings, logging and the global broker.

Every actor module imports this first, so the broker exists before any
actor is declared (Dramatiq binds actors to the global broker); ``actor``
declares one under the names :mod:`t2m.queues` gives it.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.actor import ActorDecorator

from pipeline.workers.heartbeat import WorkerHeartbeat
from t2m.broker import build_broker
from t2m.enqueue import Enqueuer
from t2m.logs import configure_logging
from t2m.queues import ActorRef
from t2m.settings import Settings

settings = Settings.from_env()
configure_logging(settings.log_level, json_lines=settings.log_json)
broker = build_broker(settings)
if settings.redis_url:
    broker.add_middleware(WorkerHeartbeat(settings))
dramatiq.set_broker(broker)


def actor(ref: ActorRef, **options: Any) -> ActorDecorator:
    """``@dramatiq.actor`` with the actor and queue names ``ref`` declares."""
    return dramatiq.actor(actor_name=ref.actor_name, queue_name=ref.queue_name, **options)


_enqueuer: Enqueuer | None = None


def enqueuer() -> Enqueuer:
    """The process's one Enqueuer on the worker broker, made on first use."""
    global _enqueuer
    if _enqueuer is None:
        _enqueuer = Enqueuer(broker)
    return _enqueuer
