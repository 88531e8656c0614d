"""Redis restarted, empty, while video jobs are queued and running.

Real processes: ``t2m serve`` and a ``t2m worker`` for the video queues on a
throwaway ``redis-server`` that keeps nothing on disk, so a restart loses
every queued message.  PostgreSQL is the truth: after Redis returns, the
stuck-job reaper (``t2m maintenance reap_stuck_jobs``, as the scheduler runs
it) re-enqueues the jobs whose messages were lost, and every job completes
exactly once.  While Redis is down, reads keep working, the health check
answers 503 with its report, rate limits fail open, and a new job is still
accepted: its row is recorded and the reaper enqueues it later (the API's
documented choice).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import redis

from t2m import queues
from t2m.broker import DramatiqKeys
from t2m.settings import Settings
from tests.faults.servers import (
    ApiProcess,
    ThrowawayRedis,
    run_maintenance,
    service_env,
    start_worker,
    stored_files,
    user_token,
)

pytestmark = pytest.mark.faults

VIDEO_QUEUES = list(queues.VIDEO_QUEUES)
JOBS = 4


def _script(n: int) -> str:
    return "\n\n".join(f"Job {n}, scene {i}: a short card." for i in range(3))


async def _jobs(db: asyncpg.Pool) -> dict[str, asyncpg.Record]:
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, status, current_stage, requeue_count, updated_at, error FROM jobs"
        )
    return {r["id"]: r for r in rows}


def _brief(jobs: dict[str, asyncpg.Record]) -> list[tuple[str, str, int, str]]:
    return [
        (j["status"], j["current_stage"], j["requeue_count"], (j["error"] or "")[:200])
        for j in jobs.values()
    ]


def _waiting_in_broker(settings: Settings) -> set[str]:
    """Jobs the reaper must leave alone: a pipeline message in the broker
    still carries them (ready, delayed, in flight) or a live worker runs them."""
    client = redis.Redis.from_url(settings.redis_url)
    keys = DramatiqKeys.of(settings)
    try:
        raws = [
            raw
            for queue in VIDEO_QUEUES
            for key in (keys.messages(queue), keys.delayed_messages(queue))
            for raw in client.hvals(key)
        ]
        beats = [
            json.loads(raw)
            for key in client.scan_iter(f"{settings.redis_namespace}:workers:*", count=1000)
            if (raw := client.get(key))
        ]
    finally:
        client.close()
    messages = {json.loads(raw)["args"][0] for raw in raws}
    return messages | {job for beat in beats for job in beat.get("active", [])}


async def _quiet(db: asyncpg.Pool, seconds: float = 3.0, timeout_s: float = 240) -> None:
    """Wait until no job row has changed for ``seconds`` (the worker is idle)."""
    last, still = None, 0.0
    for _ in range(int(timeout_s / 0.5)):
        now = {
            k: (r["status"], r["current_stage"], r["updated_at"])
            for k, r in (await _jobs(db)).items()
        }
        still = still + 0.5 if now == last else 0.0
        if still >= seconds:
            return
        last = now
        await asyncio.sleep(0.5)
    raise AssertionError("jobs never settled")


async def test_jobs_survive_a_redis_restart(
    db: asyncpg.Pool, settings: Settings, throwaway_redis: ThrowawayRedis, tmp_path: Path
) -> None:
    settings = settings.with_overrides(redis_url=throwaway_redis.url)
    token = await user_token(settings.database_url, settings, f"redis{secrets.token_hex(4)}")
    auth = {"Authorization": f"Bearer {token}"}
    # Rate limits on: counted in Redis, they must fail open while it is down.
    api = ApiProcess(service_env(settings, RATE_LIMIT_ENABLED="true"), tmp_path / "api.log")
    workers = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:

            async def generate(n: int) -> str:
                async with session.post(
                    f"{api.base_url}/api/v1/videos/generate",
                    json={
                        "script": _script(n),
                        "quality": "480p",
                        "duration": 6,
                        "narration": "none",
                    },
                    headers=auth,
                ) as response:
                    assert response.status == 202, await response.text()
                    return (await response.json())["data"]["id"]

            job_ids = [await generate(n) for n in range(JOBS)]
            workers.append(start_worker(settings, VIDEO_QUEUES, tmp_path / "worker-1.log"))
            for _ in range(600):  # mid-way: some started, not all done
                jobs = await _jobs(db)
                if any(j["status"] != "queued" for j in jobs.values()):
                    break
                await asyncio.sleep(0.05)
            assert not all(j["status"] == "completed" for j in jobs.values())

            async with session.get(f"{api.base_url}/api/v1/files", headers=auth) as response:
                assert "X-RateLimit-Remaining" in response.headers  # the limiter is on
            throwaway_redis.stop()
            # Reads need only PostgreSQL and storage (the limiter fails open).
            for job_id in job_ids:
                async with session.get(
                    f"{api.base_url}/api/v1/jobs/{job_id}", headers=auth
                ) as response:
                    assert response.status == 200, await response.text()
            async with session.get(f"{api.base_url}/api/v1/files", headers=auth) as response:
                assert response.status == 200, await response.text()
            async with session.get(f"{api.base_url}/api/v1/system/health") as response:
                assert response.status == 503
                report = await response.json()
            assert report["success"] is False
            assert report["data"]["components"]["redis"]["status"] == "unhealthy", report
            # Accepted while the queue is down: the row waits for the reaper.
            job_ids.append(await generate(JOBS))
            await asyncio.sleep(1.0)
            throwaway_redis.start()  # back, empty

            requeued: list[str] = []
            for round_ in range(20):
                await _quiet(db)
                jobs = await _jobs(db)
                if all(j["status"] == "completed" for j in jobs.values()):
                    break
                waiting = _waiting_in_broker(settings)
                report = json.loads(
                    run_maintenance(
                        settings,
                        "reap_stuck_jobs",
                        tmp_path / "maintenance.log",
                        queued_after_s=1,
                        processing_after_s=1,
                    )
                )
                assert report.get("skipped") is None, report
                unfinished = {k for k, j in jobs.items() if j["status"] != "completed"}
                # Re-sent: exactly the unfinished jobs without a message in
                # the broker (one waiting, e.g. a retry in its backoff, is
                # left to run rather than run twice).
                assert set(report["requeued"]) == unfinished - waiting, (
                    round_,
                    report,
                    sorted(waiting),
                    _brief(jobs),
                )
                requeued += report["requeued"]
                if not report["requeued"]:
                    await asyncio.sleep(2)  # a delayed retry is due later
            # The job accepted while Redis was down had no message at all.
            assert job_ids[-1] in requeued
            jobs = await _jobs(db)
            assert {j["status"] for j in jobs.values()} == {"completed"}, _brief(jobs)
            assert set(jobs) == set(job_ids)

        async with db.acquire() as conn:
            for job_id in job_ids:
                files = await conn.fetchval("SELECT count(*) FROM files WHERE job_id = $1", job_id)
                ready = await conn.fetchval(
                    "SELECT count(*) FROM job_logs WHERE job_id = $1 AND message = 'Video ready'",
                    job_id,
                )
                assert (files, ready) == (1, 1), job_id
        stored = stored_files(settings.storage_root)
        for job_id in job_ids:
            assert [k for k in stored if k.startswith(f"videos/{job_id}/")] == [
                f"videos/{job_id}/480p.mp4"
            ]
        assert [k for k in stored if k.startswith("tmp/")] == []
    finally:
        for worker in workers:
            worker.stop()
        api.stop()
