"""Long schema fuzzing run: schemathesis against the service's own OpenAPI document.

Starts the API (``t2m serve``) and a ``media`` worker as processes (the same
harness as the benchmarks: a throwaway database and Redis namespace, scratch
storage, rate limits off) and runs the schemathesis command line over every
documented operation with all its phases — examples, coverage, fuzzing and
stateful sequences built from the document's links (upload → get → download →
delete) — first as a normal user, then as an admin (who gets past the
admin-only refusals).  It fails when any check fails or when the API or the
worker died during the run, and ends with a JSON summary (test cases and
seconds per caller).

    python bench/fuzz_api.py [--max-examples 100] [--max-time SECONDS] [--seed 1]

``make fuzz`` runs it with the defaults.  The short variant that runs in the
test suite is ``tests/hardening/test_schema_fuzz.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import Service, running_service  # noqa: E402
from db.users import insert_user  # noqa: E402
from t2m.settings import Settings  # noqa: E402
from t2m.tokens import issue_token  # noqa: E402

# The checks of the hardening issue: no 5xx, every status documented, the
# documented content type and body schema.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# Logging out would revoke the run's own token, and every later request would
# only exercise the 401 path.  The job event stream (Server-Sent Events) stays
# open while its job runs, so a request/response fuzzer can only wait it out;
# its own tests (tests/api/test_job_events.py) cover it.
EXCLUDED_PATHS = ("/api/v1/auth/logout", "/api/v1/jobs/{job_id}/events")
SERVICE = {
    "web": ["serve"],
    "media": ["worker", "--queues", "media", "--threads", "2"],
}


def schemathesis_command(
    base_url: str,
    token: str,
    *,
    max_examples: int,
    seed: int | None,
    phases: str,
    max_time: int | None,
    report_dir: Path,
    config_file: Path | None = None,
) -> list[str]:
    command = [sys.executable, "-m", "schemathesis.cli"]
    if config_file is not None:
        command += ["--config-file", str(config_file)]
    command += [
        "run",
        f"{base_url}/api/v1/openapi.json",
        "--url",
        base_url,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        phases,
        "--max-examples",
        str(max_examples),
        "--continue-on-failure",
        "--workers",
        "1",
        # No answer takes this long here; a hang shows as a failure.
        "--request-timeout",
        "10",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
    ]
    for path in EXCLUDED_PATHS:
        command += ["--exclude-path", path]
    # A seed makes a run reproducible; without one the examples are fixed
    # (deterministic mode), which is what the test suite wants.
    command += ["--generation-deterministic"] if seed is None else ["--seed", str(seed)]
    if max_time is not None:
        command += ["--max-time", str(max_time)]
    return command


@dataclass
class FuzzResult:
    caller: str
    exit_code: int
    seconds: float
    test_cases: int
    output: str


def admin_token(service: Service) -> str:
    """An access token of a fresh admin, signed with the service's secrets
    (the harness persists them under the scratch ``var`` directory)."""
    env = {
        **os.environ,
        "T2M_ENV": "test",
        "T2M_VAR_DIR": str(service.scratch / "var"),
        "DATABASE_URL": service.infra.database_url,
        "REDIS_URL": service.infra.redis_url,
    }
    settings = Settings.from_env(env)

    async def insert() -> str:
        conn = await asyncpg.connect(service.infra.database_url)
        try:
            row = await insert_user(
                conn,
                username="fuzz-admin",
                email="fuzz-admin@example.test",
                password_hash=None,
                role="ADMIN",
            )
        finally:
            await conn.close()
        return str(row["id"])

    return issue_token(
        secret=settings.jwt_secret,
        issuer=settings.jwt_issuer,
        subject=asyncio.run(insert()),
        role="ADMIN",
        kind="access",
        ttl_s=6 * 3600,
    ).token


def fuzz(
    service: Service,
    token: str,
    caller: str,
    *,
    max_examples: int,
    seed: int | None,
    phases: str,
    max_time: int | None,
    report_dir: Path,
    stateful_steps: int = 6,
) -> FuzzResult:
    # Longer sequences reach further along the links (upload → get →
    # signed-url → download → delete); only settable in a config file.
    config_file = service.scratch / "schemathesis.toml"
    config_file.write_text(f"[phases.stateful]\nmax-steps = {stateful_steps}\n")
    command = schemathesis_command(
        service.base_url,
        token,
        max_examples=max_examples,
        seed=seed,
        phases=phases,
        max_time=max_time,
        report_dir=report_dir / caller,
        config_file=config_file,
    )
    started = time.perf_counter()
    # In the scratch directory: schemathesis keeps replay data in its cwd.
    result = subprocess.run(
        command, cwd=service.scratch, check=False, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    counted = re.search(r"(\d+) generated", result.stdout)
    return FuzzResult(
        caller,
        result.returncode,
        round(elapsed, 1),
        int(counted.group(1)) if counted else 0,
        result.stdout + result.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--max-time", type=int, default=None, help="seconds per caller")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    parser.add_argument("--stateful-steps", type=int, default=20, help="steps per scenario")
    parser.add_argument("--report-dir", type=Path, default=REPO / "var" / "fuzz-report")
    args = parser.parse_args(argv)

    results: list[FuzzResult] = []
    with running_service(SERVICE) as service:
        # A normal user over every operation, then an admin, who reaches the
        # admin-only operations a user only sees refused.
        for caller, token in (("user", service.token), ("admin", admin_token(service))):
            result = fuzz(
                service,
                token,
                caller,
                max_examples=args.max_examples,
                seed=args.seed,
                phases=args.phases,
                max_time=args.max_time,
                report_dir=args.report_dir.resolve(),
                stateful_steps=args.stateful_steps,
            )
            print(result.output)
            results.append(result)
        dead = [name for name, process in service.processes.items() if process.poll() is not None]
    summary = {
        "callers": {
            r.caller: {"exit_code": r.exit_code, "test_cases": r.test_cases, "seconds": r.seconds}
            for r in results
        },
        "max_examples_per_operation": args.max_examples,
        "phases": args.phases,
        "stateful_steps_per_scenario": args.stateful_steps,
        "seed": args.seed,
        "dead_processes": dead,
        "report_dir": str(args.report_dir),
    }
    print(json.dumps(summary, indent=2))
    return 1 if any(r.exit_code for r in results) or dead else 0


if __name__ == "__main__":
    raise SystemExit(main())
