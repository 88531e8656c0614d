"""Run T2M as its Procfile does, for a benchmark: API and workers as processes.

PostgreSQL and Redis come from ``DATABASE_URL`` / ``REDIS_URL`` (or the
standard local servers, or embedded ones), in a throwaway database and Redis
namespace; storage is a scratch directory.  Rate limits are off: benchmarks
measure throughput, not the limiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from db.migrate import migrate_dsn
from db.users import insert_user
from t2m.embedded import free_port
from t2m.settings import Settings
from t2m.tokens import issue_token
from tests.infra import Infra, provide_infra

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Service:
    base_url: str
    token: str
    user_id: str
    env: dict[str, str]
    infra: Infra
    scratch: Path
    processes: dict[str, subprocess.Popen[bytes]]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_user_token(database_url: str, env: dict[str, str]) -> tuple[str, str]:
    """A 'bench' user's id and an access token for it, signed with ``env``'s secrets."""
    settings = Settings.from_env(env)
    conn = await asyncpg.connect(database_url)
    try:
        row = await insert_user(
            conn, username="bench", email="bench@example.test", password_hash=None
        )
    finally:
        await conn.close()
    token = issue_token(
        secret=settings.jwt_secret,
        issuer=settings.jwt_issuer,
        subject=row["id"],
        role="USER",
        kind="access",
        ttl_s=6 * 3600,
    ).token
    return str(row["id"]), token


def wait_http(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (loopback URL we built)
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"API did not answer at {url}")


def _stop_all(processes: Mapping[str, subprocess.Popen[bytes]], timeout_s: float = 15) -> None:
    """SIGTERM every process; one still running after ``timeout_s`` is named and killed."""
    for process in processes.values():
        process.terminate()
    deadline = time.monotonic() + timeout_s
    for name, process in processes.items():
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            if os.environ.get("T2M_BENCH_DUMP_STUCK") and shutil.which("py-spy"):
                subprocess.run(["py-spy", "dump", "--pid", str(process.pid)], check=False)
            print(f"{name} did not stop within {timeout_s:.0f} s; killed", file=sys.stderr)
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_service(
    commands: Mapping[str, Sequence[str]], *, env: Mapping[str, str] | None = None
) -> Iterator[Service]:
    """Start ``t2m <command>`` processes (``{"web": ["serve"], ...}``); stop them after."""
    scratch = Path(tempfile.mkdtemp(prefix="t2m-bench-"))
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with provide_infra(scratch / "infra") as infra:
            asyncio.run(migrate_dsn(infra.database_url))
            port = free_port()
            full_env = {
                **os.environ,
                "T2M_ENV": "test",
                "T2M_VAR_DIR": str(scratch / "var"),
                "DATABASE_URL": infra.database_url,
                "REDIS_URL": infra.redis_url,
                "REDIS_NAMESPACE": infra.namespace,
                "STORAGE_ROOT": str(scratch / "storage"),
                "RATE_LIMIT_ENABLED": "false",
                # Benchmarks and fuzzing make many uploads and jobs as one user.
                "QUOTA_CONCURRENT_JOBS": "1000000",
                "QUOTA_FILES": "1000000",
                "QUOTA_RENDER_SECONDS_PER_DAY": "1000000",
                "LOG_LEVEL": "WARNING",
                "PORT": str(port),
                **(env or {}),
            }
            user_id, token = asyncio.run(make_user_token(infra.database_url, full_env))
            for name, command in commands.items():
                processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "t2m.cli", *command], env=full_env, cwd=REPO
                )
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/api/v1/auth/health")
            try:
                yield Service(base, token, user_id, full_env, infra, scratch, processes)
            finally:
                _stop_all(processes)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def print_figures(results: Mapping[str, Any]) -> None:
    """Print a benchmark's figures as aligned ``name  value`` lines, then as one
    JSON line for tools to read."""
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(results))
