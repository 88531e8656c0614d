"""End-to-end overhead of the video pipeline through the real broker and workers.

Starts the API (``t2m serve``) and one worker for the four video queues
(``t2m worker --queues parse storyboard render thumbnails``) against
PostgreSQL/Redis (``DATABASE_URL`` / ``REDIS_URL``, the standard local ones,
or embedded servers; a throwaway database), then submits one-scene 5 s 480p
videos one after another and reports, over N jobs, the p50 of
submit → completed wall time, of the render stage's own time, and of the
difference (queueing, hand-offs between stages, uploads, thumbnails).

    python bench/bench_pipeline.py [--jobs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_files import _make_user_token, _wait_http  # noqa: E402
from db.migrate import migrate_dsn  # noqa: E402
from t2m.embedded import free_port  # noqa: E402
from tests.infra import provide_infra  # noqa: E402

SCRIPT = "[duration: 5s]\nOne scene, five seconds, to measure what surrounds the render."


async def run_jobs(base: str, token: str, count: int) -> list[dict[str, float]]:
    headers = {"Authorization": f"Bearer {token}"}
    timings = []
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(count):
            started = time.perf_counter()
            async with session.post(
                f"{base}/api/v1/videos/generate", json={"script": SCRIPT, "quality": "480p"}
            ) as response:
                job_id = (await response.json())["data"]["id"]
            while True:
                async with session.get(f"{base}/api/v1/jobs/{job_id}") as response:
                    job = (await response.json())["data"]
                if job["status"] in ("completed", "failed", "cancelled"):
                    break
                await asyncio.sleep(0.02)
            total = time.perf_counter() - started
            if job["status"] != "completed":
                raise RuntimeError(f"job {job_id} {job['status']}: {job['error']}")
            timings.append({"total": total, "render": float(job["render_seconds"])})
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="t2m-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with provide_infra(scratch / "infra") as infra:
            asyncio.run(migrate_dsn(infra.database_url))
            port = free_port()
            env = {
                **os.environ,
                "T2M_ENV": "test",
                "T2M_VAR_DIR": str(scratch / "var"),
                "DATABASE_URL": infra.database_url,
                "REDIS_URL": infra.redis_url,
                "REDIS_NAMESPACE": infra.namespace,
                "STORAGE_ROOT": str(scratch / "storage"),
                "LOG_LEVEL": "WARNING",
                "PORT": str(port),
            }
            token = asyncio.run(_make_user_token(infra.database_url, env))
            cli = [sys.executable, "-m", "t2m.cli"]
            processes.append(subprocess.Popen([*cli, "serve"], env=env, cwd=REPO))
            processes.append(
                subprocess.Popen(
                    [*cli, "worker", "--queues", "parse", "storyboard", "render", "thumbnails"],
                    env=env,
                    cwd=REPO,
                )
            )
            base = f"http://127.0.0.1:{port}"
            _wait_http(f"{base}/api/v1/auth/health")
            asyncio.run(run_jobs(base, token, 1))  # warm-up: imports, fonts, caches
            timings = asyncio.run(run_jobs(base, token, args.jobs))
    finally:
        for process in processes:
            process.terminate()
            process.wait(15)
        shutil.rmtree(scratch, ignore_errors=True)
    totals = [t["total"] for t in timings]
    renders = [t["render"] for t in timings]
    overheads = [t["total"] - t["render"] for t in timings]
    results = {
        "jobs": len(timings),
        "p50_submit_to_completed_s": round(statistics.median(totals), 3),
        "p50_render_s": round(statistics.median(renders), 3),
        "p50_overhead_s": round(statistics.median(overheads), 3),
        "max_overhead_s": round(max(overheads), 3),
    }
    for key, value in results.items():
        print(f"{key:<28} {value}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
