"""Maintenance tasks and their admin endpoints: cleanup, rotation, reaper, retries."""

from __future__ import annotations

import gzip
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import redis

from db import jobs as job_rows
from pipeline.maintenance.context import MaintenanceContext
from pipeline.maintenance.reaper import reap_stuck_jobs
from pipeline.maintenance.registry import run_task
from t2m.broker import DramatiqKeys, build_broker
from t2m.enqueue import Enqueuer
from t2m.ids import new_id
from t2m.queues import (
    BUILD_STORYBOARD,
    MAKE_THUMBNAILS,
    PARSE_SCRIPT,
    RENDER_SEGMENT,
    RENDER_VIDEO,
)
from t2m.redis_client import create_redis
from t2m.redis_text import redis_text
from t2m.scratch import scratch_root
from t2m.settings import Settings
from t2m.storage import build_storage

DAY = 24 * 3600


async def _age(storage_root: Path, key: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(storage_root / key, (then, then))


async def _job(db: asyncpg.Pool, owner_id: str, **fields: Any) -> str:
    job_id = "job_" + secrets.token_hex(6)
    async with db.acquire() as conn:
        await job_rows.insert_job(
            conn, id=job_id, owner_id=owner_id, output_file_id="file_" + secrets.token_hex(6)
        )
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(fields, start=2))
        if sets:
            await conn.execute(f"UPDATE jobs SET {sets} WHERE id = $1", job_id, *fields.values())
    return job_id


async def test_cleanup_removes_only_old_tmp_objects(
    client: Any, make_user: Any, settings: Settings, tmp_path: Path
) -> None:
    admin = await make_user("ADMIN")
    store = build_storage(settings)
    for key in ("tmp/old-1", "tmp/sub/old-2", "tmp/new", "uploads/old-but-kept"):
        await store.put_bytes(key, b"x")
    for key in ("tmp/old-1", "tmp/sub/old-2", "uploads/old-but-kept"):
        await _age(settings.storage_root, key, 30 * 3600)
    await _age(settings.storage_root, "tmp/new", 10 * 3600)

    response = await client.post("/bucket/cleanup?max_age_hours=24", headers=admin.headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert sorted(body["objects"]) == ["tmp/old-1", "tmp/sub/old-2"]
    assert body["deleted"] == 2
    assert await store.exists("tmp/new")
    assert await store.exists("uploads/old-but-kept")
    await store.aclose()


# A render worker's attempt: its scratch directory with a frame in it, held
# until the process is killed (so its own cleanup never runs).
_RENDERING = """
import sys, time
from pathlib import Path
from t2m.scratch import attempt_dir
from t2m.settings import Settings
with attempt_dir(Settings(var_dir=Path(sys.argv[1])), "render", sys.argv[2]) as work:
    (work / "frame.png").write_bytes(b"x")
    print(work, flush=True)
    time.sleep(600)
"""


def _start_render(settings: Settings) -> tuple[subprocess.Popen[bytes], Path]:
    process = subprocess.Popen(
        [sys.executable, "-c", _RENDERING, str(settings.var_dir), new_id("job")],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    return process, Path(process.stdout.readline().decode().strip())


def _present(*paths: Path) -> list[bool]:
    return [path.exists() for path in paths]


async def test_cleanup_removes_only_dead_attempts_of_its_own(
    client: Any, make_user: Any, settings: Settings
) -> None:
    admin = await make_user("ADMIN")
    # Someone else's directory in the system temp dir, named as T2M's once were,
    # and an unmarked one in this instance's scratch root.
    foreign = Path(tempfile.mkdtemp(prefix="t2m-"))
    unmarked = scratch_root(settings) / f"render-{new_id('job')}-kept"
    unmarked.mkdir(parents=True)
    then = time.time() - 30 * DAY
    for path in (foreign, unmarked):
        os.utime(path, (then, then))
    live, live_dir = _start_render(settings)
    dead, dead_dir = _start_render(settings)
    try:
        dead.kill()  # SIGKILL: the attempt's own cleanup never ran
        dead.wait()
        assert _present(dead_dir, live_dir / "frame.png") == [True, True]

        response = await client.post("/bucket/cleanup?max_age_hours=0", headers=admin.headers)
        assert response.status == 200, await response.text()
        assert (await response.json())["local_dirs"] == [str(dead_dir)]
        # Gone: the dead attempt's. Kept: a live render's files, the foreign
        # directory, the unmarked one.
        assert _present(dead_dir, live_dir / "frame.png", foreign, unmarked) == [
            False,
            True,
            True,
            True,
        ]
    finally:
        live.kill()
        live.wait()
        for process in (live, dead):
            assert process.stdout is not None
            process.stdout.close()
        shutil.rmtree(foreign, ignore_errors=True)


async def test_rotate_logs_archives_exactly_the_old_rows(
    client: Any, make_user: Any, db: asyncpg.Pool, settings: Settings
) -> None:
    admin = await make_user("ADMIN")
    job_id = await _job(db, admin.id)
    async with db.acquire() as conn:
        for age_days, message in ((10, "old-a"), (8, "old-b"), (5, "recent")):
            await conn.execute(
                "INSERT INTO job_logs (job_id, ts, level, message)"
                " VALUES ($1, now() - make_interval(days => $2), 'INFO', $3)",
                job_id,
                age_days,
                message,
            )
    store = build_storage(settings)
    await store.put_bytes("logs/api-old.log", b"old")
    await store.put_bytes("logs/api-new.log", b"new")
    await _age(settings.storage_root, "logs/api-old.log", 8 * DAY)

    response = await client.post("/bucket/rotate-logs?max_age_days=7", headers=admin.headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["job_log_rows"] == 2
    assert body["log_objects"] == ["archive/logs/api-old.log"]
    [archive] = body["archives"]
    lines = gzip.decompress(await store.get_bytes(archive)).decode().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["old-a", "old-b"]
    async with db.acquire() as conn:
        left = await conn.fetch("SELECT message FROM job_logs WHERE job_id = $1", job_id)
    assert [r["message"] for r in left] == ["recent"]
    assert await store.exists("logs/api-new.log")
    assert not await store.exists("logs/api-old.log")

    runs = await client.get("/api/v1/system/maintenance-runs", headers=admin.headers)
    items = (await runs.json())["data"]["items"]
    assert items[0]["job"] == "rotate_logs" and items[0]["outcome"] == "ok"
    assert items[0]["counts"]["job_log_rows"] == 2
    await store.aclose()


async def test_maintenance_endpoints_are_admin_only(client: Any, make_user: Any) -> None:
    user = await make_user()
    for method, path in (
        ("POST", "/bucket/cleanup"),
        ("POST", "/bucket/rotate-logs"),
        ("GET", "/maintenance/failed-operations"),
        ("POST", "/maintenance/failed-operations/1/retry"),
        ("GET", "/api/v1/system/maintenance-runs"),
    ):
        response = await client.request(method, path, headers=user.headers)
        assert response.status == 403, (path, await response.text())
        response = await client.request(method, path)
        assert response.status == 401, path


async def test_stuck_job_is_requeued_then_failed(
    db: asyncpg.Pool, make_user: Any, settings: Settings
) -> None:
    user = await make_user(login=False)
    job_id = await _job(
        db,
        user.id,
        status="processing",
        current_stage="render",
        updated_at=await _ago(db, 3600),
    )
    fresh = await _job(db, user.id, status="processing", current_stage="render")
    broker = build_broker(settings)
    store = build_storage(settings)
    client = create_redis(settings)
    ctx = MaintenanceContext(db, settings, store, Enqueuer(broker).send, client)
    try:
        result = await reap_stuck_jobs(ctx, processing_after_s=600, max_requeues=1)
        assert result == {"requeued": [job_id], "failed": []}
        # The message is in the broker's render queue.
        sync = redis.Redis.from_url(settings.redis_url)
        queue = DramatiqKeys.of(settings).ready("render")
        ids = [redis_text(m) for m in sync.lrange(queue, 0, -1)]
        messages = []
        for message_id in ids:
            body = sync.hget(queue + ".msgs", message_id)
            assert body is not None, message_id
            messages.append(json.loads(body))
        assert [m["args"] for m in messages] == [[job_id]]
        assert messages[0]["actor_name"] == "render_video"

        # That message is lost too (Redis restarted empty), and the job is
        # still stuck after its one allowed requeue: failed with a clear error.
        sync.delete(queue, queue + ".msgs")
        async with db.acquire() as conn:
            await conn.execute(
                "UPDATE jobs SET updated_at = now() - interval '1 hour' WHERE id = $1", job_id
            )
        result = await reap_stuck_jobs(ctx, processing_after_s=600, max_requeues=1)
        assert result == {"requeued": [], "failed": [job_id]}
        async with db.acquire() as conn:
            job = await conn.fetchrow("SELECT status, error FROM jobs WHERE id = $1", job_id)
            other = await conn.fetchval("SELECT status FROM jobs WHERE id = $1", fresh)
        assert job["status"] == "failed" and "render stalled" in job["error"]
        assert other == "processing"
    finally:
        broker.close()
        await store.aclose()
        await client.aclose()


async def test_queued_job_is_requeued_to_parse(
    db: asyncpg.Pool, make_user: Any, settings: Settings
) -> None:
    user = await make_user(login=False)
    job_id = await _job(db, user.id, updated_at=await _ago(db, 7200))
    sent: list[tuple[str, str]] = []

    async def send(ref: Any, arg: str) -> str:
        sent.append((ref.actor_name, arg))
        return "m1"

    client = create_redis(settings)
    store = build_storage(settings)
    ctx = MaintenanceContext(db, settings, store, send, client)
    assert (await reap_stuck_jobs(ctx, queued_after_s=600))["requeued"] == [job_id]
    assert sent == [("parse_script", job_id)]
    await client.aclose()
    await store.aclose()


async def test_failed_operation_list_and_retry(
    client: Any, make_user: Any, db: asyncpg.Pool, settings: Settings
) -> None:
    admin = await make_user("ADMIN")
    job_id = await _job(db, admin.id, status="failed", current_stage="render", error="boom")
    async with db.acquire() as conn:
        await job_rows.record_failed_operation(
            conn, stage="render", job_id=job_id, error="boom", permanent=False, attempts=3
        )
        await job_rows.record_failed_operation(
            conn, stage="parse", job_id=job_id, error="older", permanent=True, attempts=1
        )
    listing = await client.get("/maintenance/failed-operations?stage=render", headers=admin.headers)
    body = await listing.json()
    assert body["pagination"]["total_items"] == 1
    [op] = body["items"]
    retried = await client.post(
        f"/maintenance/failed-operations/{op['id']}/retry", headers=admin.headers
    )
    assert retried.status == 200, await retried.text()
    assert (await retried.json())["stage"] == "render"
    async with db.acquire() as conn:
        status = await conn.fetchval("SELECT status FROM jobs WHERE id = $1", job_id)
        retried_at = await conn.fetchval(
            "SELECT retried_at FROM failed_operations WHERE id = $1", op["id"]
        )
    assert status == "processing" and retried_at is not None
    again = await client.post(
        f"/maintenance/failed-operations/{op['id']}/retry", headers=admin.headers
    )
    assert again.status == 409
    missing = await client.post(
        "/maintenance/failed-operations/999999/retry", headers=admin.headers
    )
    assert missing.status == 404


async def _ago(db: asyncpg.Pool, seconds: float) -> Any:
    async with db.acquire() as conn:
        return await conn.fetchval("SELECT now() - make_interval(secs => $1)", seconds)


async def test_purge_removes_expired_deleted_files_and_unreferenced_blobs_only(
    client: Any, make_user: Any, db: asyncpg.Pool, settings: Settings
) -> None:
    from api.keys import STORAGE
    from tests.api.files_helpers import upload
    from tests.support.media import png_bytes

    user = await make_user()
    shared = png_bytes(color=(4, 4, 4))
    kept_twin = await upload(client, user, shared, "a.png")
    deleted_twin = await upload(client, user, shared, "b.png")  # same bytes, one blob
    lonely = await upload(client, user, png_bytes(color=(5, 5, 5)), "c.png")
    recent = await upload(client, user, png_bytes(color=(6, 6, 6)), "d.png")
    for file_id in (deleted_twin["id"], lonely["id"], recent["id"]):
        assert (await client.delete(f"/api/v1/files/{file_id}", headers=user.headers)).status == 200
    async with db.acquire() as conn:  # all but the recent deletion are past the grace period
        await conn.execute(
            "UPDATE files SET deleted_at = now() - interval '4 days' WHERE id = ANY($1::text[])",
            [deleted_twin["id"], lonely["id"]],
        )
        await conn.execute(
            "UPDATE blobs SET unreferenced_since = now() - interval '4 days' WHERE sha256 = $1",
            lonely["checksum"].removeprefix("sha256:"),
        )

    async def send(*_: Any) -> str:
        return "unused"

    store = client.app[STORAGE]
    result = await run_task(
        MaintenanceContext(db, settings, store, send), "purge_deleted", grace_hours=72
    )
    assert sorted(result["files"]) == sorted([deleted_twin["id"], lonely["id"]])
    async with db.acquire() as conn:
        left = {r["id"] for r in await conn.fetch("SELECT id FROM files")}
        blobs = {
            r["sha256"]: r["storage_key"]
            for r in await conn.fetch("SELECT sha256, storage_key FROM blobs")
        }
    assert left == {kept_twin["id"], recent["id"]}
    lonely_sha = lonely["checksum"].removeprefix("sha256:")
    assert lonely_sha not in blobs  # unreferenced and old: gone, bytes too
    assert await store.stat(f"uploads/{lonely_sha[:2]}/{lonely_sha}") is None
    # Shared bytes still referenced, and a recent deletion's blob, stay.
    response = await client.get(f"/api/v1/files/{kept_twin['id']}/download", headers=user.headers)
    assert await response.read() == shared
    assert recent["checksum"].removeprefix("sha256:") in blobs


async def test_upload_waits_for_a_purge_of_its_bytes_and_stores_them_afresh(
    client: Any, make_user: Any, db: asyncpg.Pool
) -> None:
    """An upload whose bytes the purge is deleting must not count on the old
    object: it waits for the blob's lock, then stores the bytes again."""
    import asyncio

    from api.keys import STORAGE
    from db import files as file_rows
    from tests.api.files_helpers import upload
    from tests.support.media import png_bytes

    user = await make_user()
    data = png_bytes(color=(9, 9, 9))
    first = await upload(client, user, data, "first.png")
    assert (await client.delete(f"/api/v1/files/{first['id']}", headers=user.headers)).status == 200
    sha = first["checksum"].removeprefix("sha256:")
    store = client.app[STORAGE]
    async with db.acquire() as purger, purger.transaction():
        # The purge's critical section, held open while the upload arrives.
        await file_rows.lock_blob(purger, sha)
        key = await purger.fetchval(
            "SELECT storage_key FROM blobs WHERE sha256 = $1 AND ref_count = 0 FOR UPDATE", sha
        )
        assert key is not None
        second = asyncio.create_task(upload(client, user, data, "second.png"))
        for _ in range(200):  # until the upload waits on the blob's lock
            waiting = await purger.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
                " AND datname = current_database()"
            )
            if waiting:
                break
            assert not second.done(), "the upload did not wait for the purge"
            await asyncio.sleep(0.05)
        assert waiting == 1
        await store.delete(key)
        await purger.execute("DELETE FROM files WHERE id = $1", first["id"])
        await purger.execute("DELETE FROM blobs WHERE sha256 = $1", sha)
    stored = await second
    response = await client.get(f"/api/v1/files/{stored['id']}/download", headers=user.headers)
    assert response.status == 200
    assert await response.read() == data


def _messages_for(settings: Settings, queue: str) -> list[str]:
    """Job ids of every unacknowledged message of a queue (delayed included)."""
    sync = redis.Redis.from_url(settings.redis_url)
    try:
        keys = DramatiqKeys.of(settings)
        raws = sync.hvals(keys.messages(queue)) + sync.hvals(keys.delayed_messages(queue))
    finally:
        sync.close()
    return sorted(json.loads(raw)["args"][0] for raw in raws)


async def test_reaper_leaves_jobs_whose_message_waits_in_the_broker(
    db: asyncpg.Pool, make_user: Any, settings: Settings
) -> None:
    """A backlog is not a loss: the row keeps the finished stage and its old
    time while the next stage's message waits, and no worker lists the job."""
    user = await make_user(login=False)
    hour, two_hours = await _ago(db, 3600), await _ago(db, 7200)
    # Parse done, its storyboard message waiting behind a backlog.
    waiting = await _job(db, user.id, status="processing", current_stage="parse", updated_at=hour)
    queued_waiting = await _job(db, user.id, updated_at=two_hours)
    # Render failed once; its retry sits in the delay queue.
    retrying = await _job(db, user.id, status="processing", current_stage="render", updated_at=hour)
    # Fetched by a worker and not acknowledged yet (in flight).
    fetched = await _job(
        db, user.id, status="processing", current_stage="thumbnails", updated_at=hour
    )
    # Messages really lost: the reaper must still send them again.
    lost = await _job(db, user.id, status="processing", current_stage="render", updated_at=hour)
    lost_queued = await _job(db, user.id, updated_at=two_hours)

    quiet = settings.with_overrides(broker_maintenance_chance=0)
    broker, worker_broker = build_broker(quiet), build_broker(quiet)
    store = build_storage(settings)
    client = create_redis(settings)
    enqueuer = Enqueuer(broker)
    ctx = MaintenanceContext(db, settings, store, enqueuer.send, client)
    try:
        await enqueuer.send(BUILD_STORYBOARD, waiting)
        await enqueuer.send(PARSE_SCRIPT, queued_waiting)
        await enqueuer.send(RENDER_VIDEO, retrying, delay_ms=3600 * 1000)
        await enqueuer.send(MAKE_THUMBNAILS, fetched)
        consumer = worker_broker.consume("thumbnails", prefetch=1)
        for _ in range(50):  # None while the consumer backs off
            if (message := next(consumer)) is not None:
                break
        assert message is not None and message.args == (fetched,)

        result = await reap_stuck_jobs(
            ctx, processing_after_s=600, queued_after_s=600, max_requeues=1
        )
        assert sorted(result["requeued"]) == sorted([lost, lost_queued]), result
        assert result["failed"] == []
        async with db.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, status, requeue_count FROM jobs WHERE id = ANY($1::text[])",
                [waiting, queued_waiting, retrying, fetched],
            )
        assert {r["id"]: (r["status"], r["requeue_count"]) for r in rows} == {
            waiting: ("processing", 0),
            queued_waiting: ("queued", 0),
            retrying: ("processing", 0),
            fetched: ("processing", 0),
        }
        # One message per job: nothing finished was sent again.
        assert _messages_for(settings, "storyboard") == [waiting]
        assert _messages_for(settings, "parse") == sorted([queued_waiting, lost_queued])
        assert _messages_for(settings, "render") == sorted([retrying, lost])
        assert _messages_for(settings, "thumbnails") == [fetched]

        # Still waiting long after, even with no requeue allowed: none fails,
        # the two re-sent jobs included (their new messages wait too).
        async with db.acquire() as conn:
            await conn.execute(
                "UPDATE jobs SET updated_at = now() - interval '2 hours' WHERE owner_id = $1",
                user.id,
            )
        result = await reap_stuck_jobs(
            ctx, processing_after_s=600, queued_after_s=600, max_requeues=0
        )
        assert result == {"requeued": [], "failed": []}
    finally:
        broker.close()
        worker_broker.close()
        await store.aclose()
        await client.aclose()


async def test_reaper_understands_segment_messages(
    db: asyncpg.Pool, make_user: Any, settings: Settings
) -> None:
    """A segmented render's messages carry (job id, segment): one waiting keeps
    its job from being reaped; a job lost while joining gets its join again."""
    user = await make_user(login=False)
    hour = await _ago(db, 3600)
    segmenting = await _job(
        db, user.id, status="processing", current_stage="render", updated_at=hour
    )
    joining = await _job(
        db, user.id, status="processing", current_stage="assemble", updated_at=hour
    )
    quiet = settings.with_overrides(broker_maintenance_chance=0)
    broker = build_broker(quiet)
    store = build_storage(settings)
    client = create_redis(settings)
    enqueuer = Enqueuer(broker)
    ctx = MaintenanceContext(db, settings, store, enqueuer.send, client)
    try:
        await enqueuer.send(RENDER_SEGMENT, segmenting, 3)
        result = await reap_stuck_jobs(ctx, processing_after_s=600, max_requeues=1)
        assert result == {"requeued": [joining], "failed": []}
        sync = redis.Redis.from_url(settings.redis_url)
        try:
            queue = DramatiqKeys.of(settings).ready("render")
            raws = [json.loads(r) for r in sync.hvals(queue + ".msgs")]
        finally:
            sync.close()
        sent = sorted((m["actor_name"], m["args"]) for m in raws)
        assert sent == [("assemble_video", [joining]), ("render_segment", [segmenting, 3])]
    finally:
        broker.close()
        await store.aclose()
        await client.aclose()
