"""The API process killed during an upload: no half record, no bytes kept.

A slow, chunked multipart upload streams into a real ``t2m serve``; once
its bytes are landing in storage the API is SIGKILLed mid-body (no cleanup
code runs) and started again.  No file row is visible - through the list
endpoint or in the database - and the partial temporary object that the
dead process left is removed by ``t2m maintenance clean_tmp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from t2m.settings import Settings
from tests.faults.servers import (
    MULTIPART_TAIL,
    MULTIPART_TYPE,
    ApiProcess,
    multipart_head,
    run_maintenance,
    service_env,
    stored_files,
    user_token,
)

pytestmark = pytest.mark.faults

CHUNK = b"a line of a long text document that arrives slowly\n" * 1000


async def test_api_killed_mid_upload_leaves_no_half_record(
    db: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    token = await user_token(settings.database_url, settings, f"kill{secrets.token_hex(4)}")
    auth = {"Authorization": f"Bearer {token}"}
    env = service_env(settings)
    api = ApiProcess(env, tmp_path / "api.log")
    killed = asyncio.Event()
    sent = 0

    async def body():
        nonlocal sent
        yield multipart_head("long.txt")
        for _ in range(2000):  # ~100 MiB if it ever ran to the end; it does not
            if killed.is_set():
                return
            yield CHUNK
            sent += len(CHUNK)
            await asyncio.sleep(0.02)
        yield MULTIPART_TAIL

    async def upload() -> None:
        timeout = aiohttp.ClientTimeout(total=120)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(
                f"{api.base_url}/api/v1/files/upload",
                data=body(),
                headers={**auth, "Content-Type": MULTIPART_TYPE},
            ) as response,
        ):
            raise AssertionError(f"the upload got an answer: {response.status}")

    task = asyncio.create_task(upload())
    storage = settings.storage_root

    async def partial_on_disk() -> int:
        for _ in range(300):
            found = [p for p in storage.rglob("*") if p.is_file()] if storage.exists() else []
            if found and found[0].stat().st_size > 256 * 1024:
                return len(found)
            await asyncio.sleep(0.05)
        raise AssertionError("no upload bytes reached storage")

    try:
        assert await partial_on_disk() == 1
        api.kill()  # SIGKILL: no request cleanup, no shutdown handlers
        killed.set()
        with contextlib.suppress(aiohttp.ClientError):
            await task
        assert sent > 0
        left = stored_files(storage)
        assert len(left) == 1 and left[0].startswith("tmp/"), left  # the dead upload's bytes

        api.stop()  # already dead: reaps it and closes its log
        api = ApiProcess(env, tmp_path / "api-2.log", port=api.port)
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
            session.get(f"{api.base_url}/api/v1/files", headers=auth) as response,
        ):
            assert response.status == 200
            listing = await response.json()
        assert listing["data"]["items"] == []
        async with db.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM files") == 0
            assert await conn.fetchval("SELECT count(*) FROM blobs") == 0

        # The reaper of temporary objects removes what the dead process left.
        report = json.loads(
            run_maintenance(settings, "clean_tmp", tmp_path / "maint.log", max_age_hours=0)
        )
        assert report["deleted"] == 1, report
        assert stored_files(storage) == []
    finally:
        if not task.done():
            task.cancel()
        api.stop()
