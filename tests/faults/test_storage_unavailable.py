"""S3 storage going away during an upload: a clear error, nothing half-stored.

The API process (``t2m serve``) stores to an S3 server of the test's own
(moto).  A large upload streams in; once its first multipart part is stored,
the S3 server is stopped.  The answer is ``503 SERVICE_UNAVAILABLE``; no file
row or blob row exists; when S3 returns it holds no object, and the
incomplete multipart upload that the API could not abort (S3 was gone) is
aborted by ``t2m maintenance clean_tmp``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import boto3
import pytest
from moto.server import ThreadedMotoServer

from t2m.embedded import free_port
from t2m.settings import Settings
from tests.faults.servers import (
    MULTIPART_TAIL,
    MULTIPART_TYPE,
    ApiProcess,
    multipart_head,
    run_maintenance,
    service_env,
    user_token,
)

pytestmark = pytest.mark.faults


class RestartableS3:
    """A moto S3 server on a fixed port; its data outlives a stop (it is in-process)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@pytest.fixture
def s3_server() -> Iterator[RestartableS3]:
    server = RestartableS3()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_upload_when_s3_goes_away_fails_cleanly(
    db: asyncpg.Pool, settings: Settings, s3_server: RestartableS3, tmp_path: Path
) -> None:
    settings = settings.with_overrides(
        storage_backend="s3",
        s3_endpoint_url=s3_server.url,
        s3_bucket=f"t2m-fault-{secrets.token_hex(4)}",
        s3_access_key_id="testing",
        s3_secret_access_key="testing-secret",
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing-secret",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=settings.s3_bucket)
    token = await user_token(settings.database_url, settings, f"s3{secrets.token_hex(4)}")
    auth = {"Authorization": f"Bearer {token}"}
    api = ApiProcess(service_env(settings), tmp_path / "api.log")
    stopped = asyncio.Event()
    line = b"a line of a long text document going to S3\n"
    chunk = line * (256 * 1024 // len(line))

    async def body():
        yield multipart_head("long.txt")
        for _ in range(160):  # 40 MiB at most; S3 is gone long before
            yield chunk
            await asyncio.sleep(0.005 if not stopped.is_set() else 0.05)
        yield MULTIPART_TAIL

    def uploaded_parts() -> int:
        uploads = s3.list_multipart_uploads(Bucket=settings.s3_bucket).get("Uploads", [])
        if not uploads:
            return 0
        upload = uploads[0]
        parts = s3.list_parts(
            Bucket=settings.s3_bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
        return len(parts.get("Parts", []))

    async def stop_s3_after_first_part() -> None:
        for _ in range(600):
            if await asyncio.to_thread(uploaded_parts) >= 1:
                await asyncio.to_thread(s3_server.stop)
                stopped.set()
                return
            await asyncio.sleep(0.05)
        raise AssertionError("no multipart part reached S3")

    try:
        stopper = asyncio.create_task(stop_s3_after_first_part())
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session,
            session.post(
                f"{api.base_url}/api/v1/files/upload",
                data=body(),
                headers={**auth, "Content-Type": MULTIPART_TYPE},
            ) as response,
        ):
            status, answer = response.status, await response.json(content_type=None)
        await stopper
        assert status == 503, answer
        assert answer["success"] is False
        assert answer["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert answer["error"]["message"] == "Storage temporarily unavailable; try again later"
        async with db.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM files") == 0
            assert await conn.fetchval("SELECT count(*) FROM blobs") == 0

        s3_server.start()
        assert s3.list_objects_v2(Bucket=settings.s3_bucket).get("KeyCount", 0) == 0
        leftovers = s3.list_multipart_uploads(Bucket=settings.s3_bucket).get("Uploads", [])
        assert len(leftovers) == 1  # its abort could not reach S3
        assert leftovers[0]["Key"].startswith("tmp/")
        report = json.loads(
            run_maintenance(settings, "clean_tmp", tmp_path / "maint.log", max_age_hours=0)
        )
        assert report["objects"] == [leftovers[0]["Key"]], report
        assert s3.list_multipart_uploads(Bucket=settings.s3_bucket).get("Uploads", []) == []
    finally:
        api.stop()
