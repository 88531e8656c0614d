"""One suite, both backends (``storage`` is parametrised over local and S3/moto)."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest

from t2m.errors import NotFound, PayloadTooLarge, RangeNotSatisfiable, StorageError
from t2m.settings import Settings
from t2m.storage import (
    SEGMENTS,
    LocalStorage,
    Storage,
    build_storage,
    content_key,
    temp_upload_key,
)
from t2m.storage import local as local_module
from t2m.storage.base import TEMP_PREFIX
from t2m.storage.s3 import MIN_PART_SIZE, S3Storage
from tests.t2m.storage.conftest import S3_TEST_CREDENTIALS, make_s3

MiB = 1024 * 1024


def pattern(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating-looking bytes (cheap to build)."""
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


async def chunked(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def failing_after(data: bytes, exc: BaseException) -> AsyncIterator[bytes]:
    async for chunk in chunked(data):
        yield chunk
    raise exc


async def read_all(storage: Storage, key: str, *args: int | None, **kwargs: int) -> bytes:
    return b"".join([chunk async for chunk in storage.iter_range(key, *args, **kwargs)])  # type: ignore[arg-type]


async def keys(storage: Storage, prefix: str = "") -> list[str]:
    return [info.key async for info in storage.list(prefix)]


async def pending_multipart_uploads(storage: Storage) -> list[str]:
    if not isinstance(storage, S3Storage):
        return []
    client = await storage._get_client()
    response = await client.list_multipart_uploads(Bucket=storage.bucket)
    return [upload["Key"] for upload in response.get("Uploads", [])]


def temp_files(storage: Storage) -> list[Path]:
    if not isinstance(storage, LocalStorage) or not storage.root.exists():
        return []
    return [p for p in storage.root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


async def assert_nothing_left(storage: Storage, key: str) -> None:
    assert await storage.stat(key) is None
    assert not await storage.exists(key)
    assert await keys(storage) == []
    assert await pending_multipart_uploads(storage) == []
    assert temp_files(storage) == []


# -- writing ---------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 100_000, 2 * MIN_PART_SIZE + 12345])
async def test_put_stream_reports_size_and_sha256(storage: Storage, size: int) -> None:
    data = pattern(size)
    result = await storage.put_stream("uploads/x/blob", chunked(data, 100_003), content_type="a/b")
    assert result.size == size
    assert result.sha256_hex == hashlib.sha256(data).hexdigest()
    assert await storage.get_bytes("uploads/x/blob") == data
    info = await storage.stat("uploads/x/blob")
    assert info is not None and info.size == size and info.key == "uploads/x/blob"
    assert isinstance(info.modified, datetime) and info.modified.tzinfo is not None
    assert info.etag
    assert await pending_multipart_uploads(storage) == []
    assert temp_files(storage) == []


async def test_put_replaces_existing_object(storage: Storage) -> None:
    await storage.put_bytes("scripts/a.txt", b"old")
    result = await storage.put_bytes("scripts/a.txt", b"new content")
    assert result.size == 11
    assert await storage.get_bytes("scripts/a.txt") == b"new content"


@pytest.mark.parametrize("size", [1000, 2 * MIN_PART_SIZE])  # single put / multipart
async def test_max_bytes_overflow_leaves_nothing(storage: Storage, size: int) -> None:
    data = pattern(size)
    with pytest.raises(PayloadTooLarge):
        await storage.put_stream("uploads/big", chunked(data), max_bytes=size - 1)
    await assert_nothing_left(storage, "uploads/big")
    # Exactly at the limit is fine.
    result = await storage.put_stream("uploads/big", chunked(data), max_bytes=size)
    assert result.size == size


async def test_overflow_keeps_previous_object(storage: Storage) -> None:
    await storage.put_bytes("videos/v.mp4", b"previous")
    with pytest.raises(PayloadTooLarge):
        await storage.put_stream("videos/v.mp4", chunked(pattern(5000)), max_bytes=10)
    assert await storage.get_bytes("videos/v.mp4") == b"previous"


@pytest.mark.parametrize("size", [1000, MIN_PART_SIZE + 1000])
async def test_exception_mid_stream_leaves_nothing(storage: Storage, size: int) -> None:
    class ClientWentAway(Exception):
        pass

    with pytest.raises(ClientWentAway):
        await storage.put_stream("uploads/broken", failing_after(pattern(size), ClientWentAway()))
    await assert_nothing_left(storage, "uploads/broken")


@pytest.mark.parametrize("size", [1000, MIN_PART_SIZE + 1000])
async def test_cancellation_mid_stream_leaves_nothing(storage: Storage, size: int) -> None:
    sent = asyncio.Event()
    never = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        async for chunk in chunked(pattern(size)):
            yield chunk
        sent.set()
        await never.wait()  # a client that stops sending, then disconnects
        yield b"never"

    task = asyncio.ensure_future(storage.put_stream("uploads/cancelled", stalled()))
    await asyncio.wait_for(sent.wait(), 10)
    await asyncio.sleep(0.05)  # let a part upload / batch write get under way
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)  # the local backend closes its fd when the writer thread ends
    await assert_nothing_left(storage, "uploads/cancelled")


async def test_put_file_and_download_to(storage: Storage, tmp_path: Path) -> None:
    data = pattern(MIN_PART_SIZE + 777, seed=3)
    source = tmp_path / "render.mp4"
    source.write_bytes(data)
    result = await storage.put_file("videos/job_1/final.mp4", source, content_type="video/mp4")
    assert result.size == len(data)
    assert result.sha256_hex == hashlib.sha256(data).hexdigest()
    target = tmp_path / "out" / "copy.mp4"
    target.parent.mkdir()
    assert await storage.download_to("videos/job_1/final.mp4", target) == len(data)
    assert target.read_bytes() == data
    assert sorted(p.name for p in target.parent.iterdir()) == ["copy.mp4"]
    with pytest.raises(NotFound):
        await storage.download_to("videos/missing", tmp_path / "out" / "missing")
    assert sorted(p.name for p in target.parent.iterdir()) == ["copy.mp4"]


# -- reading ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 0, slice(0, 1)),  # first byte
        (999_999, 999_999, slice(999_999, 1_000_000)),  # last byte
        (123_456, 654_321, slice(123_456, 654_322)),  # middle
        (0, None, slice(0, None)),  # whole
        (0, 999_999, slice(0, None)),  # whole, explicit
        (500_000, None, slice(500_000, None)),  # open-ended
        (999_000, 5_000_000, slice(999_000, None)),  # end past the object: clamped
    ],
)
async def test_iter_range(storage: Storage, start: int, end: int | None, expected: slice) -> None:
    data = pattern(1_000_000, seed=1)
    await storage.put_bytes("videos/r.bin", data)
    got = await read_all(storage, "videos/r.bin", start, end, chunk_size=64 * 1024)
    assert got == data[expected]


async def test_iter_range_chunks_are_bounded(storage: Storage) -> None:
    await storage.put_bytes("videos/r.bin", pattern(300_000))
    sizes = [len(c) async for c in storage.iter_range("videos/r.bin", 0, None, 50_000)]
    assert sum(sizes) == 300_000 and max(sizes) <= 50_000


async def test_iter_range_errors(storage: Storage) -> None:
    await storage.put_bytes("videos/r.bin", b"0123456789")
    with pytest.raises(RangeNotSatisfiable) as caught:
        await read_all(storage, "videos/r.bin", 10, None)
    assert caught.value.headers["Content-Range"] == "bytes */10"
    with pytest.raises(NotFound):
        await read_all(storage, "videos/missing.bin")
    await storage.put_bytes("videos/empty", b"")
    assert await read_all(storage, "videos/empty") == b""


async def test_abandoned_range_read_releases_the_object(storage: Storage) -> None:
    await storage.put_bytes("videos/r.bin", pattern(2 * MiB))
    stream = storage.iter_range("videos/r.bin", chunk_size=64 * 1024)
    first = await anext(stream)
    assert len(first) <= 64 * 1024
    await stream.aclose()  # client disconnected mid-download
    await storage.delete("videos/r.bin")
    assert not await storage.exists("videos/r.bin")


async def test_missing_objects(storage: Storage) -> None:
    assert await storage.stat("uploads/none") is None
    assert not await storage.exists("uploads/none")
    with pytest.raises(NotFound):
        await storage.get_bytes("uploads/none")
    await storage.delete("uploads/none")  # idempotent


async def test_delete_is_idempotent(storage: Storage) -> None:
    await storage.put_bytes("logs/a.log", b"x")
    assert await storage.exists("logs/a.log")
    await storage.delete("logs/a.log")
    await storage.delete("logs/a.log")
    assert await storage.stat("logs/a.log") is None


async def test_move(storage: Storage) -> None:
    data = pattern(4321)
    tmp_key = temp_upload_key()
    await storage.put_bytes(tmp_key, data)
    final = content_key(hashlib.sha256(data).hexdigest())
    await storage.put_bytes(final, b"stale")
    await storage.move(tmp_key, final)
    assert await storage.get_bytes(final) == data
    assert not await storage.exists(tmp_key)
    with pytest.raises(NotFound):
        await storage.move(tmp_key, final)


async def test_list_by_prefix_in_key_order(storage: Storage) -> None:
    stored = [
        "videos/job_1/final.mp4",
        "videos/job_1/preview.mp4",
        "videos/job_10/final.mp4",
        "videos/job_1.mp4",
        "videos/a.b",
        "videos/a/b",
        "uploads/ab/abc",
        "uploads/ac/acd",
        "thumbnails/x.jpg",
    ]
    for index, key in enumerate(stored):
        await storage.put_bytes(key, b"x" * (index + 1))
    assert await keys(storage) == sorted(stored)
    assert await keys(storage, "videos/") == sorted(k for k in stored if k.startswith("videos/"))
    assert await keys(storage, "videos/job_1") == [
        "videos/job_1.mp4",
        "videos/job_1/final.mp4",
        "videos/job_1/preview.mp4",
        "videos/job_10/final.mp4",
    ]
    assert await keys(storage, "videos/job_1/") == [
        "videos/job_1/final.mp4",
        "videos/job_1/preview.mp4",
    ]
    assert await keys(storage, "uploads/a") == ["uploads/ab/abc", "uploads/ac/acd"]
    assert await keys(storage, "models/") == []
    sizes = {info.key: info.size async for info in storage.list("thumbnails/")}
    assert sizes == {"thumbnails/x.jpg": 9}


async def test_usage_by_segment(storage: Storage) -> None:
    await storage.put_bytes("videos/a", b"12345")
    await storage.put_bytes("videos/b/c", b"123")
    await storage.put_bytes("tmp/x", b"1")
    usage = await storage.usage_by_segment()
    assert set(SEGMENTS) <= set(usage)
    assert usage["videos"] == {"objects": 2, "bytes": 8}
    assert usage["tmp"] == {"objects": 1, "bytes": 1}
    assert usage["uploads"] == {"objects": 0, "bytes": 0}


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/uploads/a",
        "uploads",
        "uploads/",
        "uploads//a",
        "uploads/../etc/passwd",
        "uploads/./a",
        "uploads/a\x00b",
        "uploads\\a",
        "uploads/a\nb",
        "secrets/a",
        f"uploads/{TEMP_PREFIX}x",
        "uploads/" + "a" * 1100,
    ],
)
async def test_invalid_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by rule
        await storage.put_bytes(key, b"x")
    with pytest.raises(ValueError):  # noqa: PT011
        await storage.stat(key)
    with pytest.raises(ValueError):  # noqa: PT011
        await storage.delete(key)


@pytest.mark.parametrize("prefix", ["/", "../", "uploads/../", "a\\b", "nope/x"])
async def test_invalid_prefixes_are_refused(storage: Storage, prefix: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        await keys(storage, prefix)


async def test_health_and_describe(storage: Storage) -> None:
    await storage.health()
    described = storage.describe()
    assert described["backend"] == storage.backend_name
    assert S3_TEST_CREDENTIALS["secret_access_key"] not in repr(described)


async def test_unicode_keys(storage: Storage) -> None:
    await storage.put_bytes("uploads/ünï/çødé ✓.txt", b"ok")
    assert await keys(storage, "uploads/ünï/") == ["uploads/ünï/çødé ✓.txt"]


# -- backend specifics -------------------------------------------------------------
async def test_presigned_url_serves_the_object(s3_storage: S3Storage) -> None:
    data = pattern(10_000, seed=7)
    await s3_storage.put_bytes("videos/j/final.mp4", data, content_type="video/mp4")
    url = await s3_storage.presigned_get_url(
        "videos/j/final.mp4", 60, filename="Résumé final.mp4", inline=False,
        content_type="video/mp4",
    )  # fmt: skip
    assert url is not None
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            assert response.status == 200
            assert await response.read() == data
            disposition = response.headers["Content-Disposition"]
            assert disposition.startswith("attachment;")
            assert "filename*=UTF-8''R%C3%A9sum%C3%A9%20final.mp4" in disposition
            assert response.headers["Content-Type"] == "video/mp4"
        async with http.get(url, headers={"Range": "bytes=100-199"}) as response:
            assert response.status == 206
            assert await response.read() == data[100:200]
            assert response.headers["Content-Range"] == "bytes 100-199/10000"


async def test_local_has_paths_and_no_presigned_urls(local_storage: LocalStorage) -> None:
    await local_storage.put_bytes("videos/v.mp4", b"data")
    path = local_storage.local_path("videos/v.mp4")
    assert path is not None and path.read_bytes() == b"data"
    assert await local_storage.presigned_get_url("videos/v.mp4", 60) is None
    with pytest.raises(ValueError):  # noqa: PT011
        local_storage.local_path("../x")


async def test_s3_has_no_local_paths(s3_storage: S3Storage) -> None:
    assert s3_storage.local_path("videos/v.mp4") is None


@pytest.mark.parametrize("fail_on_call", [1, 3])
async def test_local_disk_full(
    local_storage: LocalStorage, monkeypatch: pytest.MonkeyPatch, fail_on_call: int
) -> None:
    calls = 0
    real_writev = local_module._writev

    def full_disk(fd: int, buffers: list[memoryview]) -> int:
        nonlocal calls
        calls += 1
        if calls >= fail_on_call:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_writev(fd, buffers)

    monkeypatch.setattr(local_module, "_writev", full_disk)
    with pytest.raises(StorageError, match="full"):
        await local_storage.put_stream("uploads/huge", chunked(pattern(20 * MiB)))
    await asyncio.sleep(0.05)
    await assert_nothing_left(local_storage, "uploads/huge")
    with pytest.raises(StorageError, match="full"):
        await local_storage.put_bytes("uploads/small", b"x")
    assert temp_files(local_storage) == []


async def test_source_errors_are_not_storage_errors(storage: Storage) -> None:
    """A client's connection reset must not be reported as a storage failure."""
    with pytest.raises(ConnectionResetError):
        await storage.put_stream("uploads/r", failing_after(pattern(1000), ConnectionResetError()))
    await assert_nothing_left(storage, "uploads/r")


async def test_local_put_file_missing_source(local_storage: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await local_storage.put_file("videos/x", tmp_path / "nope")
    assert temp_files(local_storage) == []


async def test_local_health_fails_on_unusable_root(tmp_path: Path) -> None:
    root = tmp_path / "not-a-dir"
    root.write_bytes(b"")
    with pytest.raises(StorageError):
        await LocalStorage(root).health()


async def test_s3_health_fails_when_unreachable() -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = make_s3(f"http://127.0.0.1:{port}", max_attempts=1)
    try:
        with pytest.raises(StorageError):
            await backend.health()
    finally:
        await backend.aclose()


async def test_s3_large_move_uses_multipart_copy(
    s3_storage: S3Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from t2m.storage import s3 as s3_module

    monkeypatch.setattr(s3_module, "MAX_SINGLE_COPY", 1000)
    data = pattern(5000)
    await s3_storage.put_bytes("tmp/uploads/x", data)
    await s3_storage.move("tmp/uploads/x", "uploads/xx/x")
    assert await s3_storage.get_bytes("uploads/xx/x") == data
    assert not await s3_storage.exists("tmp/uploads/x")


# -- construction and helpers ------------------------------------------------------
def test_build_storage(tmp_path: Path) -> None:
    local = build_storage(Settings(storage_root=tmp_path))
    assert isinstance(local, LocalStorage) and local.root == tmp_path.resolve()
    s3 = build_storage(
        Settings(
            storage_backend="s3",
            s3_bucket="b",
            s3_endpoint_url="http://127.0.0.1:1",
            s3_secret_access_key="very-secret",
        )
    )
    assert isinstance(s3, S3Storage) and s3.bucket == "b"
    assert "very-secret" not in repr(s3.describe())
    from t2m.errors import ConfigError

    with pytest.raises(ConfigError):
        build_storage(Settings(storage_backend="ftp"))


def test_content_key() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert content_key(digest) == f"uploads/{digest[:2]}/{digest}"
    assert content_key(digest.upper()) == content_key(digest)
    with pytest.raises(ValueError):  # noqa: PT011
        content_key("abc")
    assert temp_upload_key().startswith("tmp/uploads/")
    assert temp_upload_key() != temp_upload_key()
