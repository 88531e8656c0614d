"""Storage full during an upload: a clear error, and nothing half-stored.

The API process (``t2m serve``) keeps its local storage on a 1 MiB tmpfs
mounted for the test, and a 3 MiB file is uploaded: the write hits ENOSPC
part-way through the body.  The answer is ``503 SERVICE_UNAVAILABLE`` (the
spec's code for a dependency that cannot serve now) whose message says the
storage is full; no file row, no blob row and no byte - temporary or not -
is left behind, and once the failed upload is gone a small one succeeds.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
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
    service_env,
    stored_files,
    user_token,
)

pytestmark = pytest.mark.faults


@pytest.fixture
def tiny_storage(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "tiny-storage"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root)], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


async def _counts(pool: asyncpg.Pool) -> tuple[int, int]:
    async with pool.acquire() as conn:
        files = await conn.fetchval("SELECT count(*) FROM files")
        blobs = await conn.fetchval("SELECT count(*) FROM blobs")
    return files, blobs


async def test_upload_to_full_storage_fails_cleanly(
    db: asyncpg.Pool, settings: Settings, tiny_storage: Path, tmp_path: Path
) -> None:
    settings = settings.with_overrides(storage_root=tiny_storage)
    token = await user_token(settings.database_url, settings, f"full{secrets.token_hex(4)}")
    auth = {"Authorization": f"Bearer {token}"}
    headers = {**auth, "Content-Type": MULTIPART_TYPE}
    api = ApiProcess(service_env(settings), tmp_path / "api.log")
    try:
        line = b"the quick brown fox jumps over the lazy dog\n"
        big = line * (3 * 1024 * 1024 // len(line))

        async def body():  # streamed: the bytes reach storage as they arrive
            yield multipart_head("big.txt")
            for start in range(0, len(big), 64 * 1024):
                yield big[start : start + 64 * 1024]
            yield MULTIPART_TAIL

        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(
                f"{api.base_url}/api/v1/files/upload", data=body(), headers=headers
            ) as response:
                status, answer = response.status, await response.json(content_type=None)
            assert status == 503, answer
            assert answer["success"] is False
            assert answer["error"]["code"] == "SERVICE_UNAVAILABLE"
            # Clear, and without the internals (keys, paths) of the log line.
            assert answer["error"]["message"] == (
                "Storage is full; nothing was stored, try again later"
            )
            assert await _counts(db) == (0, 0)
            assert stored_files(tiny_storage) == []

            small = multipart_head("small.txt") + line * 10 + MULTIPART_TAIL
            async with session.post(
                f"{api.base_url}/api/v1/files/upload", data=small, headers=headers
            ) as response:
                assert response.status == 201, await response.text()
                file_id = (await response.json())["data"]["id"]
            async with session.get(f"{api.base_url}/api/v1/files", headers=auth) as response:
                listing = (await response.json())["data"]["items"]
            assert [f["id"] for f in listing] == [file_id]
            assert await _counts(db) == (1, 1)
            assert len(stored_files(tiny_storage)) == 1
            assert stored_files(tiny_storage)[0].startswith("uploads/")
    finally:
        api.stop()
