"""Long schema fuzzing run: schemathesis against the service's own OpenAPI document.

Starts the API (``t2m serve``) and a ``media`` worker as processes (the same
harness as the benchmarks: a throwaway database and Redis namespace, scratch
storage, rate limits off), signs in as a normal user and runs the schemathesis
command line over every documented operation with all its phases — examples,
coverage, fuzzing and stateful sequences built from the document's links
(upload → get → download → delete).  It fails when any check fails or when
the API or the worker died during the run.

    python bench/fuzz_api.py [--max-examples 100] [--max-time SECONDS] [--seed 1]

``make fuzz`` runs it with the defaults.  The short variant that runs in the
test suite is ``tests/hardening/test_schema_fuzz.py``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import running_service  # noqa: E402

# The checks of the hardening issue: no 5xx, every status documented, the
# documented content type and body schema.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# Operations fuzzing must not call with the run's own token: logging out
# revokes it, and every later request would only exercise the 401 path.
EXCLUDED_PATHS = ("/api/v1/auth/logout",)
SERVICE = {
    "web": ["serve"],
    "media": ["worker", "--queues", "media", "--threads", "2"],
}


def schemathesis_command(
    base_url: str,
    token: str,
    *,
    max_examples: int,
    seed: int,
    phases: str,
    max_time: int | None,
    report_dir: Path,
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
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
        "--seed",
        str(seed),
        "--generation-deterministic",
        "--continue-on-failure",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        # Reproducible from the seed alone; no example database in the tree.
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
    ]
    for path in EXCLUDED_PATHS:
        command += ["--exclude-path", path]
    if max_time is not None:
        command += ["--max-time", str(max_time)]
    return command


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--max-time", type=int, default=None, help="seconds for the whole run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    parser.add_argument("--report-dir", type=Path, default=REPO / "var" / "fuzz-report")
    args = parser.parse_args(argv)

    with running_service(SERVICE) as service:
        command = schemathesis_command(
            service.base_url,
            service.token,
            max_examples=args.max_examples,
            seed=args.seed,
            phases=args.phases,
            max_time=args.max_time,
            report_dir=args.report_dir,
        )
        started = time.perf_counter()
        result = subprocess.run(command, cwd=REPO, check=False)
        elapsed = time.perf_counter() - started
        dead = [name for name, process in service.processes.items() if process.poll() is not None]
    summary = {
        "schemathesis_exit_code": result.returncode,
        "seconds": round(elapsed, 1),
        "max_examples": args.max_examples,
        "phases": args.phases,
        "dead_processes": dead,
        "report_dir": str(args.report_dir),
    }
    print(json.dumps(summary, indent=2))
    return 1 if result.returncode != 0 or dead else 0


if __name__ == "__main__":
    raise SystemExit(main())
