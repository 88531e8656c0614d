"""Webhook delivery through the real broker and a real ``webhooks`` worker.

Starts the API (``t2m serve``), a webhooks worker as the Procfile runs it
(``t2m worker --queues webhooks --threads 16``) and one worker for the video
queues, against PostgreSQL/Redis (``DATABASE_URL`` / ``REDIS_URL``, the
standard local ones, or embedded servers; a throwaway database), and a local
receiver in this process that answers 200 at once.  Reports:

* throughput: N deliveries (``file.processed`` events spread over 4
  subscriptions, rows written and ids enqueued up front) — deliveries/s from
  the first enqueue to the last receipt;
* latency: for M short video jobs, job completion (``completed_at``) →
  receipt of its ``job.completed``, p50 and max.

    python bench/bench_webhooks.py [--deliveries 2000] [--jobs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import running_service  # noqa: E402
from t2m.embedded import free_port  # noqa: E402

SCRIPT = "[duration: 2s]\nOne short scene, to time the webhook after completion."
SUBSCRIPTIONS = 4


class Receiver:
    def __init__(self) -> None:
        self.base = ""
        self.arrivals: dict[str, list[tuple[float, dict]]] = {}
        self.expected = 0
        self.done = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        payload = json.loads(await request.read())
        name = request.match_info["name"]
        self.arrivals.setdefault(name, []).append((time.time(), payload))
        if name == "load" and len(self.arrivals["load"]) >= self.expected:
            self.done.set()
        return web.Response(text="ok")


async def throughput(
    base: str, headers: dict[str, str], env: dict[str, str], receiver: Receiver, count: int
) -> dict[str, float]:
    import asyncpg

    from db import webhooks as webhook_rows
    from db.pool import create_pool
    from t2m.broker import build_broker
    from t2m.enqueue import Enqueuer
    from t2m.queues import DELIVER_WEBHOOK
    from t2m.settings import Settings

    hooks = []
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(SUBSCRIPTIONS):
            async with session.post(
                f"{base}/api/v1/webhooks",
                json={"url": f"{receiver.base}/load", "events": ["file.processed"]},
            ) as response:
                hooks.append((await response.json())["data"])
    pool: asyncpg.Pool = await create_pool(env["DATABASE_URL"], min_size=1, max_size=2)
    ids: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        for i in range(count):
            hook = hooks[i % SUBSCRIPTIONS]
            ids += await webhook_rows.emit_event(
                conn,
                owner_id=env["BENCH_USER_ID"],
                event="file.processed",
                data={"file_id": f"bench-{i}", "status": "completed"},
                webhook_ids=[hook["id"]],
            )
    await pool.close()
    receiver.expected = count
    enqueuer = Enqueuer(build_broker(Settings.from_env(env)))
    started = time.time()
    for delivery_id in ids:
        enqueuer.send_now(DELIVER_WEBHOOK, delivery_id)
    enqueued = time.time() - started
    await asyncio.wait_for(receiver.done.wait(), timeout=600)
    elapsed = receiver.arrivals["load"][-1][0] - started
    return {
        "deliveries": count,
        "enqueue_s": round(enqueued, 3),
        "wall_s": round(elapsed, 3),
        "deliveries_per_s": round(count / elapsed, 1),
    }


async def completion_latency(
    base: str, headers: dict[str, str], receiver: Receiver, jobs: int
) -> dict[str, float]:
    delays = []
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(
            f"{base}/api/v1/webhooks",
            json={"url": f"{receiver.base}/jobs", "events": ["job.completed"]},
        ) as response:
            assert response.status == 201, await response.text()
        for _ in range(jobs):
            async with session.post(
                f"{base}/api/v1/videos/generate", json={"script": SCRIPT, "quality": "480p"}
            ) as response:
                job_id = (await response.json())["data"]["id"]
            while True:
                received = [
                    at
                    for at, payload in receiver.arrivals.get("jobs", [])
                    if payload["data"]["job_id"] == job_id
                ]
                if received:
                    break
                await asyncio.sleep(0.01)
            async with session.get(f"{base}/api/v1/jobs/{job_id}") as response:
                job = (await response.json())["data"]
            completed = datetime.fromisoformat(job["completed_at"].replace("Z", "+00:00"))
            delays.append(received[0] - completed.timestamp())
    return {
        "jobs": jobs,
        "p50_completed_to_received_ms": round(statistics.median(delays) * 1000, 1),
        "max_completed_to_received_ms": round(max(delays) * 1000, 1),
    }


async def run(base: str, token: str, env: dict[str, str], deliveries: int, jobs: int) -> dict:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/{name}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    receiver.base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        results = await throughput(base, headers, env, receiver, deliveries)
        results.update(await completion_latency(base, headers, receiver, jobs))
    finally:
        await runner.cleanup()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=10)
    args = parser.parse_args()
    commands = {
        "web": ["serve"],
        "webhooks": ["worker", "--queues", "webhooks", "--threads", "16"],
        "video": ["worker", "--queues", "parse", "narrate", "storyboard", "render", "thumbnails"],
    }
    # The receiver listens on loopback, which the SSRF guard refuses by default.
    with running_service(commands, env={"WEBHOOK_ALLOWED_CIDRS": "127.0.0.1/32"}) as svc:
        env = {**svc.env, "BENCH_USER_ID": svc.user_id}
        results = asyncio.run(run(svc.base_url, svc.token, env, args.deliveries, args.jobs))
    for key, value in results.items():
        print(f"{key:<32} {value}")
    print(json.dumps({"bench": "webhooks", **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
