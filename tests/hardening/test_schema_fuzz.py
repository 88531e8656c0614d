"""Schema fuzzing in the suite: schemathesis over every documented operation.

The real service runs as processes — ``t2m serve`` and a ``media`` worker (the
uploads fuzzing makes are processed) — and the schemathesis command line runs
all its phases (examples, coverage, fuzzing, stateful sequences along the
document's links) with a few deterministic examples per operation, first as a
normal user, then as an admin (who gets past the admin-only refusals).

Checks: no 5xx, every status and content type documented, every body valid
against its documented schema; and neither process died.  The longer run is
``make fuzz`` (bench/fuzz_api.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.fuzz_api import SERVICE, admin_token, fuzz
from bench.harness import Service, running_service

PHASES = "examples,coverage,fuzzing,stateful"


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    with running_service(SERVICE) as running:
        yield running


@pytest.mark.parametrize(("caller", "max_examples"), [("user", 5), ("admin", 3)])
def test_schema_fuzz(service: Service, tmp_path: Path, caller: str, max_examples: int) -> None:
    token = service.token if caller == "user" else admin_token(service)
    result = fuzz(
        service,
        token,
        caller,
        max_examples=max_examples,
        seed=None,  # deterministic examples: the same run every time
        phases=PHASES,
        max_time=None,
        report_dir=tmp_path,
    )
    # The tail holds schemathesis' failures and their curl reproductions.
    assert result.exit_code == 0, result.output[-15000:]
    assert result.test_cases > 1000, result.output[-5000:]
    dead = [name for name, process in service.processes.items() if process.poll() is not None]
    assert dead == [], f"processes died during fuzzing: {dead}"
