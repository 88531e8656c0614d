"""``t2m dev`` started the way a user starts it: from a clean directory, with
no PORT, DATABASE_URL or REDIS_URL, so it brings up its embedded servers and
serves on the default port.  These tests run on a bare machine (``make
test-bare``: a network namespace with only loopback), where that port is free
and nothing answers on PostgreSQL's or Redis's standard ports."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from t2m.ports import port_in_use
from tests.processes import REPO, wait_for

DEFAULT_BASE = "http://127.0.0.1:8000"
# Settings a user does not have on a fresh machine.
_USER_UNSET = ("PORT", "HOST", "PUBLIC_BASE_URL", "DATABASE_URL", "REDIS_URL", "BROKER_URL")


def user_env() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _USER_UNSET and not name.startswith("T2M_")
    }
    # This checkout's code, whichever installation runs it.
    env["PYTHONPATH"] = str(REPO)
    return env


def t2m_command() -> str:
    return str(Path(sys.executable).parent / "t2m")


@dataclass
class DevRun:
    process: subprocess.Popen[str]
    directory: Path
    started_at: float
    output: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.output)

    def password(self) -> str:
        found = re.search(r"admin user created: username=admin password=(\S+)", self.text())
        return found.group(1) if found else ""

    def printed_urls(self) -> dict[str, str]:
        return dict(re.findall(r"^\s+(API|Swagger UI|Health):\s+(\S+)$", self.text(), re.M))


def _health_status(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
            body = response.read().decode()
    except OSError:
        return ""
    found = re.search(r'"status": "(\w+)"', body)
    return found.group(1) if found else ""


@pytest.fixture(scope="session")
def dev_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRun]:
    if port_in_use("127.0.0.1", 8000):
        pytest.fail(
            "port 8000 is taken: the first-run tests start `t2m dev` on its default port; "
            "run them on a bare machine with `make test-bare`"
        )
    directory = tmp_path_factory.mktemp("fresh-checkout")
    shutil.copy(REPO / "Procfile", directory / "Procfile")
    process = subprocess.Popen(
        [t2m_command(), "dev"],
        cwd=directory,
        env=user_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own process group, to stop it as Ctrl-C in a terminal would.
        start_new_session=True,
    )
    run = DevRun(process, directory, time.monotonic())
    assert process.stdout is not None
    stream = process.stdout
    reader = threading.Thread(target=lambda: run.output.extend(stream), daemon=True)
    reader.start()
    try:
        wait_for(
            lambda: (
                process.poll() is not None or _health_status(DEFAULT_BASE + "/health") == "healthy"
            ),
            180,
            "t2m dev to answer healthy",
            interval_s=0.2,
        )
        assert process.poll() is None, run.text()
        print(f"\nt2m dev: healthy after {time.monotonic() - run.started_at:.1f} s")
        yield run
    finally:
        with_group = os.getpgid(process.pid) if process.poll() is None else None
        if with_group is not None:
            os.killpg(with_group, signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(with_group, signal.SIGKILL)
                process.wait()
        # The pipe ends when the last process of the group has gone; the
        # reader then stops and the pipe can be closed under it.
        reader.join(30)
        stream.close()
