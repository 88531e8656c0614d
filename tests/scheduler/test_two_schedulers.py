"""Two real scheduler processes never run a slot twice; a standby takes over.

Both copies run ``t2m scheduler`` against the test database and Redis with
a short interval and lease; a real maintenance worker executes what they
enqueue and records each run with its slot in ``maintenance_runs``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest
import redis
from redis.asyncio import Redis

from scheduler.jobs import ScheduledJob, parse_job_overrides
from scheduler.main import claim_slot, slot_of
from t2m.redis_client import redis_key
from t2m.redis_text import redis_text
from t2m.settings import Settings
from tests.pipeline.workers.conftest import start_worker  # noqa: F401
from tests.processes import REPO, ServiceProcess, service_env, wait_for
from tests.support.polling import until

JOB = "expire_revoked_tokens"
# A slot is skipped only if its copy wakes more than one interval late, and
# leadership flips only after a lease without renewal (renewed every third
# of it): both must outlast the stalls of a busy two-core machine, while two
# slots per leader keep the test near half a minute.
INTERVAL_S = 6
LEASE_S = 3


def start_scheduler(settings: Settings, log_path: Path) -> ServiceProcess:
    return ServiceProcess(
        ["scheduler", "--job", f"{JOB}={INTERVAL_S}", "--lease-s", str(LEASE_S)],
        service_env(settings, LOG_LEVEL="INFO"),
        log_path,
    )


def _leader_pid(client: redis.Redis, settings: Settings) -> int | None:
    token = client.get(redis_key(settings, "scheduler", "leader"))
    if token is None:
        return None
    return int(redis_text(token).split(":")[1])


async def _slots(db: asyncpg.Pool) -> list[tuple[int, int]]:
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT slot, count(*) AS runs FROM maintenance_runs WHERE job = $1"
            " GROUP BY slot ORDER BY slot",
            JOB,
        )
    return [(r["slot"], r["runs"]) for r in rows]


async def _wait_slots(db: asyncpg.Pool, predicate, what: str, timeout_s: float = 90) -> None:
    async def holds() -> bool:
        return bool(predicate(await _slots(db)))

    await until(holds, what, timeout_s=timeout_s, interval_s=0.2)


async def test_two_schedulers_run_each_slot_once_and_the_standby_takes_over(
    db: asyncpg.Pool, settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue("start_worker")(["maintenance"])
    client = redis.Redis.from_url(settings.redis_url)
    copies = [start_scheduler(settings, tmp_path / f"scheduler-{i}.log") for i in range(2)]
    try:
        leader_pid = wait_for(
            lambda: _leader_pid(client, settings), 30, "a scheduler to take the lead"
        )
        leader = next(c for c in copies if c.pid == leader_pid)
        standby = next(c for c in copies if c is not leader)
        await _wait_slots(db, lambda s: len(s) >= 2, "two slots run under the first leader")
        assert standby.process.poll() is None, standby.log_text()

        leader.kill()
        last_before = (await _slots(db))[-1][0]
        wait_for(
            lambda: _leader_pid(client, settings) == standby.pid,
            30,
            "the standby to take the lead",
        )
        took_over_slot = slot_of(time.time(), INTERVAL_S)
        await _wait_slots(
            db,
            lambda s: s[-1][0] >= took_over_slot + 1,
            "the new leader's own schedule to run a slot",
        )
    finally:
        for copy in copies:
            copy.stop()

    slots = await _slots(db)
    # Never the same job twice: one run per slot, whoever fired it.
    assert all(runs == 1 for _, runs in slots), slots
    ran = {slot for slot, _ in slots}
    assert None not in ran
    # Every slot from the first to the last ran, except at most those that
    # fell wholly inside the lease the dead leader left behind.
    missing = set(range(min(ran), max(ran) + 1)) - ran
    assert all(last_before < slot < took_over_slot for slot in missing), (missing, slots)
    assert "scheduler is now the leader" in standby.log_text()


async def test_a_slot_is_claimed_once_even_by_two_leaders(settings: Settings, db) -> None:
    # Two copies that both believe they lead (one stalled past its lease).
    job = ScheduledJob(JOB, 60)
    clients = [Redis.from_url(settings.redis_url) for _ in range(2)]
    try:
        slot = slot_of(time.time(), job.interval_s)
        claims = await asyncio.gather(*(claim_slot(c, settings, job, slot) for c in clients))
        assert sorted(claims) == [False, True]
        assert await claim_slot(clients[0], settings, job, slot + 1) is True
    finally:
        for c in clients:
            await c.aclose()


def test_job_overrides_are_checked() -> None:
    assert parse_job_overrides([f"{JOB}=2.5"]) == (ScheduledJob(JOB, 2.5),)
    for bad in ("nope=3", f"{JOB}=0", f"{JOB}=soon", JOB):
        with pytest.raises(ValueError, match=r"scheduled job|interval"):
            parse_job_overrides([bad])
    result = subprocess.run(
        [sys.executable, "-m", "t2m.cli", "scheduler", "--job", "nope=3"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown scheduled job" in result.stderr
