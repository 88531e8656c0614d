"""Worker liveness: each worker process publishes a heartbeat key in Redis.

The key (``<ns>:workers:<host>:<pid>``) holds the queues it consumes and
expires after three missed beats, so health checks and the stuck-job reaper
see a dead worker disappear on their own.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy

from t2m.redis_client import redis_key
from t2m.settings import Settings

log = logging.getLogger(__name__)


class WorkerHeartbeat(dramatiq.Middleware):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.key = redis_key(settings, "workers", f"{socket.gethostname()}:{os.getpid()}")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Message id -> the job id it carries: the beat lists the jobs this
        # process is running, so the stuck-job reaper can tell a job still in
        # progress from one whose message was lost.
        self._running: dict[str, str] = {}
        self._running_lock = threading.Lock()

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if message.args and isinstance(message.args[0], str):
            with self._running_lock:
                self._running[message.message_id] = message.args[0]

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._running_lock:
            self._running.pop(message.message_id, None)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self.after_process_message(broker, message)

    def running_jobs(self) -> list[str]:
        with self._running_lock:
            return sorted(set(self._running.values()))

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        queues = sorted(worker.consumer_whitelist or broker.get_declared_queues())
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat, args=(queues,), name="t2m-heartbeat", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        try:
            client = redis.Redis.from_url(self.settings.redis_url, socket_timeout=2)
            client.delete(self.key)
        except redis.RedisError:
            log.warning("could not remove heartbeat key %s", self.key)

    def _beat(self, queues: list[str]) -> None:
        interval = self.settings.worker_heartbeat_s
        client = redis.Redis.from_url(self.settings.redis_url, socket_timeout=2)
        started = time.time()
        while not self._stop.is_set():
            payload: dict[str, Any] = {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "queues": queues,
                "started_at": started,
                "beat_at": time.time(),
                "active": self.running_jobs(),
            }
            try:
                client.set(self.key, json.dumps(payload), px=int(interval * 3000))
            except redis.RedisError:
                # Redis down: keep trying; liveness simply lapses meanwhile.
                log.warning("heartbeat to Redis failed", exc_info=True)
            self._stop.wait(interval)
