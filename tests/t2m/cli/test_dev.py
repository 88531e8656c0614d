"""``t2m dev`` as a user runs it: from any directory, and stopped by a signal.

Each run gets a free PORT, its own var dir and no DATABASE_URL / REDIS_URL,
so it brings up embedded servers of its own and touches nothing shared.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from t2m.embedded import free_port
from tests.processes import REPO
from tests.support.polling import wait_for

# Settings a user does not have on a fresh machine.
_UNSET = ("PORT", "HOST", "PUBLIC_BASE_URL", "DATABASE_URL", "REDIS_URL", "BROKER_URL")


def _dev_env(var_dir: Path, port: int) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _UNSET and not name.startswith("T2M_")
    }
    env.update(PORT=str(port), T2M_VAR_DIR=str(var_dir), PYTHONPATH=str(REPO))
    return env


def _dev_command() -> list[str]:
    return [sys.executable, "-m", "t2m.cli", "dev"]


def test_dev_finds_its_procfile_from_any_directory(tmp_path: Path) -> None:
    """No Procfile where it starts: it uses the installed one and gets as far as the port."""
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            _dev_command(),
            cwd=empty,
            env=_dev_env(tmp_path / "var", port),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr


def test_dev_says_when_the_named_procfile_is_missing(tmp_path: Path) -> None:
    result = subprocess.run(
        [*_dev_command(), "--procfile", str(tmp_path / "Nope")],
        cwd=tmp_path,
        env=_dev_env(tmp_path / "var", free_port()),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"no Procfile at {tmp_path / 'Nope'}" in result.stderr


def _health_status(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return str(json.loads(response.read()).get("status", ""))
    except (OSError, ValueError):
        return ""


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _family(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    return []


@contextlib.contextmanager
def _dev_running(directory: Path, var_dir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``t2m dev`` started in ``directory``, healthy; whatever it leaves is killed after."""
    started: list[psutil.Process] = []
    with open(directory / "dev.log", "wb") as log:
        dev = subprocess.Popen(
            _dev_command(),
            cwd=directory,
            env=_dev_env(var_dir, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the test signals it alone, not a terminal's group
        )
        try:
            wait_for(
                lambda: dev.poll() is not None or _health_status(port) == "healthy",
                240,
                "t2m dev to answer healthy",
                interval_s=0.2,
            )
            assert dev.poll() is None, (directory / "dev.log").read_text(errors="replace")
            started.extend(_family(dev.pid))
            yield dev
        finally:
            # Only what this run started: its process tree and its PostgreSQL.
            started.extend(_postgres_of(var_dir))
            for process in started:
                if _alive(process):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                dev.wait(30)


def _postgres_of(var_dir: Path) -> list[psutil.Process]:
    """The embedded PostgreSQL of ``var_dir`` (a daemon: not a child of ``t2m dev``)."""
    pid_file = var_dir / "pg" / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError):
        return _family(int(pid_file.read_text().splitlines()[0]))
    return []


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_stops_every_process_and_embedded_server(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """Signalled alone (a service manager, ``kill``), not with a terminal's group."""
    directory = tmp_path / "elsewhere"  # and no Procfile here either
    directory.mkdir()
    var_dir = tmp_path / "var"
    with _dev_running(directory, var_dir, free_port()) as dev:
        processes = _family(dev.pid)[1:]
        postgres = _postgres_of(var_dir)
        names = {p.name() for p in processes}
        assert any("honcho" in " ".join(p.cmdline()) for p in processes), names
        assert any(p.name().startswith("redis-server") for p in processes), names
        assert postgres, "the embedded PostgreSQL runs"
        dev.send_signal(stop)
        returncode = dev.wait(120)
        everything = [*processes, *postgres]
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not any(map(_alive, everything)), 30, "everything to stop")
        left = [(p.pid, p.name()) for p in everything if _alive(p)]
        assert not left, f"still running after t2m dev exited: {left}"
        assert returncode == 128 + stop
