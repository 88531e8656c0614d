"""Worker-process set-up: settings, logging and the global broker.

Every actor module imports this first, so the broker exists before any
``@dramatiq.actor`` is declared (Dramatiq binds actors to the global broker).
"""

from __future__ import annotations

import dramatiq

from pipeline.workers.heartbeat import WorkerHeartbeat
from t2m.broker import build_broker
from t2m.logs import configure_logging
from t2m.settings import Settings

settings = Settings.from_env()
configure_logging(settings.log_level, json_lines=settings.log_json)
broker = build_broker(settings)
if settings.redis_url:
    broker.add_middleware(WorkerHeartbeat(settings))
dramatiq.set_broker(broker)
