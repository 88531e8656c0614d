"""clean_segments: old stored segments go unless a live job lists them; nothing
outside ``segments/`` is ever touched."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import asyncpg

from db import jobs as job_rows
from pipeline.maintenance.context import MaintenanceContext
from pipeline.maintenance.registry import run_task
from pipeline.stages.segment_keys import references_key
from t2m.queues import ActorRef
from t2m.settings import Settings
from t2m.storage import build_storage


def _age(root: Path, key: str, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(root / key, (then, then))


async def _job(db: asyncpg.Pool, owner_id: str, status: str) -> str:
    job_id = "job_" + secrets.token_hex(6)
    async with db.acquire() as conn:
        await job_rows.insert_job(
            conn, id=job_id, owner_id=owner_id, output_file_id="file_" + secrets.token_hex(6)
        )
        await conn.execute("UPDATE jobs SET status = $2 WHERE id = $1", job_id, status)
    return job_id


async def test_old_segments_no_live_job_lists_are_deleted_and_nothing_else(
    db: asyncpg.Pool, make_user: Any, settings: Settings
) -> None:
    user = await make_user(login=False)
    store = build_storage(settings)
    root = settings.storage_root
    old_unlisted = ["segments/aa/unlisted/720p.mp4", "segments/aa/unlisted/480p.mp4"]
    old_of_live = ["segments/bb/live/720p.mp4", "segments/bb/live/sound.m4a"]
    old_of_finished = ["segments/cc/finished/720p.mp4"]
    young = ["segments/dd/young/720p.mp4"]
    elsewhere = ["videos/job_x/720p.mp4", "tmp/segments/aa/x.mp4", "archive/segments/aa/x.mp4"]
    for key in [*old_unlisted, *old_of_live, *old_of_finished, *young, *elsewhere]:
        await store.put_bytes(key, b"x")
    rendering = await _job(db, user.id, "processing")
    done = await _job(db, user.id, "completed")
    for job_id, prefixes in ((rendering, ["segments/bb/live"]), (done, ["segments/cc/finished"])):
        await store.put_bytes(references_key(job_id), json.dumps({"prefixes": prefixes}).encode())
        _age(root, references_key(job_id), 500)
    for key in [*old_unlisted, *old_of_live, *old_of_finished, *elsewhere]:
        _age(root, key, settings.segment_retention_hours + 1)
    _age(root, young[0], settings.segment_retention_hours - 1)
    ctx = MaintenanceContext(db, settings, store, _no_send)
    try:
        result = await run_task(ctx, "clean_segments")
        assert sorted(result["objects"]) == sorted([*old_unlisted, *old_of_finished])
        assert result["deleted"] == 3
        assert result["retention_hours"] == settings.segment_retention_hours
        for key in [*old_of_live, *young, *elsewhere]:
            assert await store.exists(key), key
        for key in [*old_unlisted, *old_of_finished]:
            assert not await store.exists(key), key
        assert await store.exists(references_key(rendering))

        # Once the job is over its pieces go too; a shorter window takes the young one.
        async with db.acquire() as conn:
            await conn.execute("UPDATE jobs SET status = 'failed' WHERE id = $1", rendering)
        again = await run_task(ctx, "clean_segments", retention_hours=0.5)
        assert sorted(again["objects"]) == sorted([*old_of_live, *young])
        for key in elsewhere:
            assert await store.exists(key), key
    finally:
        await store.aclose()


async def _no_send(actor: ActorRef, message_id: str) -> str:
    raise AssertionError("clean_segments sends no message")
