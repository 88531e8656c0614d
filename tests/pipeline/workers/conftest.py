"""Real worker processes through the real Redis broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from t2m.settings import Settings
from tests.processes import REPO, ServiceProcess, start_worker_process, wait_for

__all__ = ["REPO", "start_worker", "wait_for"]


@pytest.fixture
def start_worker(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start ``t2m worker --queues …`` processes (stopped after the test)."""
    started: list[ServiceProcess] = []

    def start(queues: list[str], **env: str) -> ServiceProcess:
        log_path = tmp_path / f"worker-{len(started)}.log"
        worker = start_worker_process(settings, queues, log_path, **env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
