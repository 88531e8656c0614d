"""The Procfile, docker-compose.yml and the worker registry describe the same processes."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from t2m.queues import QUEUES
from t2m.worker_modules import QUEUE_MODULES

REPO = Path(__file__).resolve().parents[1]


def _procfile() -> dict[str, list[str]]:
    lines = (REPO / "Procfile").read_text().splitlines()
    return {
        name.strip(): shlex.split(command)
        for name, _, command in (line.partition(":") for line in lines if line.strip())
    }


def test_every_queue_has_actors_and_a_procfile_worker():
    assert set(QUEUE_MODULES) == set(QUEUES)
    served: set[str] = set()
    for command in _procfile().values():
        if command[:2] == ["t2m", "worker"]:
            for word in command[command.index("--queues") + 1 :]:
                if word.startswith("--"):
                    break
                served.add(word)
    assert served == set(QUEUES)


def test_compose_runs_the_procfile_commands():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    commands = [service.get("command") for service in compose["services"].values()]
    for name, command in _procfile().items():
        assert command in commands, f"Procfile process {name!r} missing from docker-compose.yml"
