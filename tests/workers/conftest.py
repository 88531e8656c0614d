"""Real worker processes through the real Redis broker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from t2m.redis_client import redis_key
from t2m.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "T2M_ENV": "test",
        "T2M_VAR_DIR": str(settings.var_dir),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "REDIS_NAMESPACE": settings.redis_namespace,
        "JWT_SECRET": settings.jwt_secret,
        "SIGNING_SECRET": settings.signing_secret,
        "STORAGE_ROOT": str(settings.storage_root),
        "WORKER_HEARTBEAT": "0.5",
        "BROKER_HEARTBEAT_TIMEOUT_MS": "3000",
        "BROKER_MAINTENANCE_CHANCE": "1000000",
    }
    env.update(extra)
    return env


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class WorkerProcess:
    def __init__(self, settings: Settings, queues: list[str], log_path: Path, **env: str) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "t2m.cli", "worker", "--queues", *queues, "--threads", "2"],
            env=worker_env(settings, **env),
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def stop(self, timeout_s: float = 15) -> int:
        if self.process.poll() is None:
            # To the main process only: Dramatiq forwards it to its workers
            # (a second SIGTERM to them means "kill now").
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode


@pytest.fixture
def start_worker(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(queues: list[str], **env: str) -> WorkerProcess:
        worker = WorkerProcess(settings, queues, tmp_path / f"worker-{len(started)}.log", **env)
        started.append(worker)
        client = redis.Redis.from_url(settings.redis_url)
        pattern = redis_key(settings, "workers", "*")
        known = {k for k in client.scan_iter(pattern)}

        def booted() -> bool:
            if worker.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{worker.log_text()}")
            return bool({k for k in client.scan_iter(pattern)} - known)

        wait_for(booted, 60, "the worker's heartbeat")
        return worker

    yield start
    for worker in started:
        worker.stop()
