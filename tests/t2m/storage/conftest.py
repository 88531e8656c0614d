"""Storage fixtures: every test runs against the local backend and against S3 (moto)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from t2m.storage import LocalStorage, Storage
from t2m.storage.s3 import MIN_PART_SIZE, S3Storage

S3_TEST_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing-secret"}


def make_s3(endpoint: str, bucket: str | None = None, **kwargs: object) -> S3Storage:
    return S3Storage(
        bucket=bucket or f"t2m-test-{secrets.token_hex(6)}",
        endpoint_url=endpoint,
        region="us-east-1",
        create_bucket=True,
        part_size=MIN_PART_SIZE,  # small parts: multipart paths run with a few MiB
        access_key_id=S3_TEST_CREDENTIALS["access_key_id"],
        secret_access_key=S3_TEST_CREDENTIALS["secret_access_key"],
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
async def shared_s3(moto_endpoint: str) -> AsyncIterator[S3Storage]:
    """One S3 client for the session: opening a client costs ~0.3 s."""
    backend = make_s3(moto_endpoint)
    yield backend
    await backend.aclose()


async def empty_bucket(backend: S3Storage) -> None:
    client = await backend._get_client()
    uploads = await client.list_multipart_uploads(Bucket=backend.bucket)
    for upload in uploads.get("Uploads", []):
        await client.abort_multipart_upload(
            Bucket=backend.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
    async for info in backend.list(""):
        await client.delete_object(Bucket=backend.bucket, Key=info.key)


@pytest.fixture
async def s3_storage(shared_s3: S3Storage) -> AsyncIterator[S3Storage]:
    await empty_bucket(shared_s3)
    yield shared_s3
    await empty_bucket(shared_s3)


@pytest.fixture
async def local_storage(tmp_path: Path) -> AsyncIterator[LocalStorage]:
    backend = LocalStorage(tmp_path / "storage-root")
    yield backend
    await backend.aclose()


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> Storage:
    backend: Storage = request.getfixturevalue(f"{request.param}_storage")
    return backend
