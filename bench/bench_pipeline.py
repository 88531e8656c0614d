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
import statistics
import sys
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import print_figures, running_service  # noqa: E402

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
    video_queues = ["parse", "narrate", "storyboard", "render", "thumbnails"]
    with running_service({"web": ["serve"], "video": ["worker", "--queues", *video_queues]}) as svc:
        asyncio.run(run_jobs(svc.base_url, svc.token, 1))  # warm-up: imports, fonts, caches
        timings = asyncio.run(run_jobs(svc.base_url, svc.token, args.jobs))
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
    print_figures(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
