"""T2M commands as real processes for tests: their environment, start, stop and kill."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TypeVar

import redis

from t2m.redis_client import redis_key
from t2m.settings import Settings
from tests.support.polling import wait_for

REPO = Path(__file__).resolve().parents[1]

T = TypeVar("T")


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes ``Settings.from_env()`` give ``settings`` back,
    with dead workers noticed within seconds instead of the default minute."""
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
        "STORAGE_BACKEND": settings.storage_backend,
        "STORAGE_ROOT": str(settings.storage_root),
        "WORKER_HEARTBEAT": "0.5",
        "BROKER_HEARTBEAT_TIMEOUT_MS": "3000",
        "BROKER_MAINTENANCE_CHANCE": "1000000",
        "QUOTA_STORED_BYTES": str(settings.quota_stored_bytes),
        "QUOTA_FILES": str(settings.quota_files),
        "QUOTA_RENDER_SECONDS_PER_DAY": str(settings.quota_render_seconds_per_day),
        "QUOTA_CONCURRENT_JOBS": str(settings.quota_concurrent_jobs),
        "REGISTRATION": settings.registration,
    }
    if settings.storage_backend == "s3":
        env.update(
            S3_ENDPOINT_URL=settings.s3_endpoint_url or "",
            S3_BUCKET=settings.s3_bucket,
            S3_ACCESS_KEY_ID=settings.s3_access_key_id or "",
            S3_SECRET_ACCESS_KEY=settings.s3_secret_access_key or "",
        )
    env.update(extra)
    return env


class ServiceProcess:
    """One ``t2m <command>`` process in its own process group, logging to a file."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "t2m.cli", *argv],
            env=env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (SIGKILL: a crash, no cleanup runs)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        if sig == signal.SIGKILL:
            self.process.wait()

    def stop(self, timeout_s: float = 15) -> int:
        if self.process.poll() is None:
            # To the main process only: Dramatiq forwards it to its workers
            # (a second SIGTERM to them means "kill now").
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # stragglers (ffmpeg) of a crash
        self._log.close()
        return self.process.returncode


def start_worker_process(
    settings: Settings, queues: list[str], log_path: Path, **env: str
) -> ServiceProcess:
    """A ``t2m worker`` for ``queues``, once its heartbeat is in Redis."""
    client = redis.Redis.from_url(settings.redis_url)
    pattern = redis_key(settings, "workers", "*")
    known = set(client.scan_iter(pattern))
    worker = ServiceProcess(
        ["worker", "--queues", *queues, "--threads", "2"], service_env(settings, **env), log_path
    )

    def booted() -> bool:
        assert worker.alive(), f"worker exited early:\n{worker.log_text()}"
        return bool(set(client.scan_iter(pattern)) - known)

    wait_for(booted, 60, "the worker's heartbeat")
    return worker
