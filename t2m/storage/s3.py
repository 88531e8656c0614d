"""Storage in an S3 bucket (AWS, MinIO, moto) through aioboto3.

One client is opened on first use and kept for the life of the instance (and
its event loop).  Streams larger than one part go through multipart upload,
aborted on any failure, so a failed or cancelled upload never leaves an object.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import secrets
from collections.abc import AsyncGenerator, AsyncIterable
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError

from t2m.errors import NotFound, PayloadTooLarge, StorageError
from t2m.filenames import content_disposition
from t2m.storage.base import (
    DEFAULT_CHUNK_SIZE,
    ObjectInfo,
    PutResult,
    Storage,
    check_range,
    validate_key,
    validate_prefix,
)

log = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part but the last
DEFAULT_PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000
MAX_SINGLE_COPY = 5 * 1024**3  # CopyObject's limit; larger objects copy in parts
_FILE_READ = 8 * 1024 * 1024
_MISSING_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _is_missing(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and _code(exc) in _MISSING_CODES


def _storage_error(exc: BaseException, action: str, key: str) -> StorageError:
    if isinstance(exc, ClientError):
        detail = f"{_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}".strip(": ")
    else:
        detail = type(exc).__name__
    return StorageError(f"S3 error: cannot {action} {key} ({detail})")


async def _read_file(path: Path, size: int) -> AsyncGenerator[bytes, None]:
    handle = await asyncio.to_thread(open, path, "rb", buffering=0)
    try:
        while True:
            data = await asyncio.to_thread(handle.read, size)
            if not data:
                return
            yield data
    finally:
        handle.close()


class S3Storage(Storage):
    backend_name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        create_bucket: bool = False,
        part_size: int = DEFAULT_PART_SIZE,
        max_pool_connections: int = 32,
        max_attempts: int = 3,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self.bucket = bucket
        self.endpoint_url = endpoint_url or None
        self.region = region
        self.create_bucket = create_bucket
        self.part_size = part_size
        self._session = aioboto3.Session(
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            region_name=region,
        )
        self._explicit_credentials = bool(access_key_id)
        self._config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path"} if self.endpoint_url else {},
            max_pool_connections=max_pool_connections,
            retries={"max_attempts": max_attempts, "mode": "standard"},
        )
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Future[Any] | None = None

    # -- client lifecycle -------------------------------------------------
    async def _get_client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                # The client's connections belong to the old loop, which can no
                # longer run its cleanup; start afresh on this one.
                log.warning("S3Storage used from a new event loop; reopening the client")
            self._client = self._stack = self._opening = None
            self._loop = loop
        if self._client is not None:
            return self._client
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        try:
            return await asyncio.shield(self._opening)
        except BaseException:
            if self._opening.done():
                self._opening = None  # let the next call retry
            raise

    async def _open(self) -> Any:
        stack = AsyncExitStack()
        try:
            client = await stack.enter_async_context(
                self._session.client("s3", endpoint_url=self.endpoint_url, config=self._config)
            )
            if self.create_bucket:
                await self._ensure_bucket(client)
        except BaseException as exc:
            await stack.aclose()
            if isinstance(exc, ClientError | BotoCoreError):
                raise _storage_error(exc, "open bucket", self.bucket) from exc
            raise
        self._stack, self._client = stack, client
        return client

    async def _ensure_bucket(self, client: Any) -> None:
        try:
            await client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if not _is_missing(exc):
                raise
        params: dict[str, Any] = {"Bucket": self.bucket}
        if self.region and self.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            await client.create_bucket(**params)
            log.info("created S3 bucket %s", self.bucket)
        except ClientError as exc:
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    async def aclose(self) -> None:
        stack, self._stack, self._client, self._opening = self._stack, None, None, None
        if stack is not None and self._loop is asyncio.get_running_loop():
            await stack.aclose()
        self._loop = None

    # -- writing ----------------------------------------------------------
    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
        content_type: str | None = None,
    ) -> PutResult:
        return await self._put(key, chunks, max_bytes, content_type, self.part_size)

    async def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> PutResult:
        size = (await asyncio.to_thread(os.stat, path)).st_size
        part_size = max(self.part_size, math.ceil(size / (MAX_PARTS - 1)))
        return await self._put(
            key, _read_file(Path(path), _FILE_READ), None, content_type, part_size
        )

    async def _put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        max_bytes: int | None,
        content_type: str | None,
        part_size: int,
    ) -> PutResult:
        validate_key(key)
        client = await self._get_client()
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        sha = hashlib.sha256()
        total = 0
        pieces: list[bytes] = []
        buffered = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        inflight: asyncio.Task[dict[str, Any]] | None = None

        async def take_buffer() -> bytes:
            nonlocal buffered
            data = b"".join(pieces)
            pieces.clear()
            buffered = 0
            # hashlib releases the GIL: hash off the event loop.
            await asyncio.to_thread(sha.update, data)
            return data

        async def upload_part(number: int, data: bytes) -> dict[str, Any]:
            assert upload_id is not None
            response = await client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
            return {"PartNumber": number, "ETag": response["ETag"]}

        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                total += len(chunk)
                if max_bytes is not None and total > max_bytes:
                    raise PayloadTooLarge(f"Upload exceeds the limit of {max_bytes} bytes")
                pieces.append(chunk)
                buffered += len(chunk)
                if buffered >= part_size:
                    data = await take_buffer()
                    if upload_id is None:
                        created = await client.create_multipart_upload(
                            Bucket=self.bucket, Key=key, **extra
                        )
                        upload_id = created["UploadId"]
                    if inflight is not None:
                        parts.append(await inflight)
                    # One part uploads while the next one is being received.
                    inflight = asyncio.ensure_future(upload_part(len(parts) + 1, data))
                    if len(parts) + 1 >= MAX_PARTS:
                        raise StorageError(f"S3 upload of {key} exceeds {MAX_PARTS} parts")
            data = await take_buffer()
            if upload_id is None:
                await client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)
            else:
                if inflight is not None:
                    parts.append(await inflight)
                    inflight = None
                if data:
                    parts.append(await upload_part(len(parts) + 1, data))
                await client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException as exc:
            if inflight is not None and not inflight.done():
                inflight.cancel()
            if inflight is not None:
                with contextlib.suppress(BaseException):
                    await inflight
            if upload_id is not None:
                # Shielded: even when we are being cancelled, the abort must
                # reach S3 or the parts would linger (and be billed).
                await asyncio.shield(self._abort_multipart(client, key, upload_id))
            if isinstance(exc, ClientError | BotoCoreError):
                raise _storage_error(exc, "write", key) from exc
            raise
        return PutResult(size=total, sha256_hex=sha.hexdigest())

    async def _abort_multipart(self, client: Any, key: str, upload_id: str) -> None:
        try:
            await client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError):
            log.warning("could not abort multipart upload %s of %s", upload_id, key, exc_info=True)

    # -- reading ----------------------------------------------------------
    async def get_bytes(self, key: str) -> bytes:
        validate_key(key)
        client = await self._get_client()
        try:
            response = await client.get_object(Bucket=self.bucket, Key=key)
            async with response["Body"] as body:
                data: bytes = await body.read()
                return data
        except (ClientError, BotoCoreError) as exc:
            if _is_missing(exc):
                raise NotFound("Stored object not found") from exc
            raise _storage_error(exc, "read", key) from exc

    async def download_to(self, key: str, path: Path) -> int:
        target = Path(path)
        temp = target.with_name(f"{target.name}.{secrets.token_hex(4)}.part")
        handle = await asyncio.to_thread(open, temp, "wb")
        size = 0
        try:
            pieces: list[bytes] = []
            buffered = 0
            async for chunk in self.iter_range(key, chunk_size=1024 * 1024):
                pieces.append(chunk)
                buffered += len(chunk)
                if buffered >= 4 * 1024 * 1024:
                    await asyncio.to_thread(handle.write, b"".join(pieces))
                    size += buffered
                    pieces, buffered = [], 0
            if pieces:
                await asyncio.to_thread(handle.write, b"".join(pieces))
                size += buffered
            await asyncio.to_thread(handle.close)
            await asyncio.to_thread(os.replace, temp, target)
        except BaseException:
            handle.close()
            temp.unlink(missing_ok=True)
            raise
        return size

    async def iter_range(
        self,
        key: str,
        start: int = 0,
        end_inclusive: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncGenerator[bytes, None]:
        validate_key(key)
        if start < 0 or (end_inclusive is not None and end_inclusive < start):
            raise ValueError(f"invalid byte range {start}-{end_inclusive}")
        client = await self._get_client()
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if start or end_inclusive is not None:
            params["Range"] = f"bytes={start}-{'' if end_inclusive is None else end_inclusive}"
        try:
            response = await client.get_object(**params)
        except (ClientError, BotoCoreError) as exc:
            if _is_missing(exc):
                raise NotFound("Stored object not found") from exc
            if isinstance(exc, ClientError) and _code(exc) == "InvalidRange":
                info = await self.stat(key)
                if info is None:
                    raise NotFound("Stored object not found") from exc
                check_range(info.size, start, end_inclusive)  # raises 416, or empty object
                return
            raise _storage_error(exc, "read", key) from exc
        try:
            async with response["Body"] as body:
                while True:
                    data = await body.content.read(chunk_size)
                    if not data:
                        break
                    yield data
        except (ClientError, BotoCoreError, OSError) as exc:
            raise _storage_error(exc, "read", key) from exc

    async def stat(self, key: str) -> ObjectInfo | None:
        validate_key(key)
        client = await self._get_client()
        try:
            head = await client.head_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            if _is_missing(exc):
                return None
            raise _storage_error(exc, "stat", key) from exc
        return ObjectInfo(
            key=key,
            size=int(head["ContentLength"]),
            modified=head["LastModified"],
            etag=str(head.get("ETag", "")).strip('"') or None,
        )

    async def list(self, prefix: str = "") -> AsyncGenerator[ObjectInfo, None]:
        validate_prefix(prefix)
        client = await self._get_client()
        paginator = client.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", ()):
                    yield ObjectInfo(
                        key=item["Key"],
                        size=int(item["Size"]),
                        modified=item["LastModified"],
                        etag=str(item.get("ETag", "")).strip('"') or None,
                    )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, "list", prefix or "/") from exc

    async def presigned_get_url(
        self,
        key: str,
        expires_s: int,
        *,
        filename: str | None = None,
        inline: bool = False,
        content_type: str | None = None,
    ) -> str | None:
        validate_key(key)
        client = await self._get_client()
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if filename is not None or inline:
            params["ResponseContentDisposition"] = content_disposition(filename or "", inline)
        if content_type:
            params["ResponseContentType"] = content_type
        url: str = await client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=int(expires_s)
        )
        return url

    # -- changing ---------------------------------------------------------
    async def delete(self, key: str) -> None:
        validate_key(key)
        client = await self._get_client()
        try:
            await client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            if _is_missing(exc):
                return
            raise _storage_error(exc, "delete", key) from exc

    async def move(self, src: str, dst: str) -> None:
        validate_key(src)
        validate_key(dst)
        if src == dst:
            if await self.stat(src) is None:
                raise NotFound("Stored object not found")
            return
        client = await self._get_client()
        source = {"Bucket": self.bucket, "Key": src}
        try:
            info = await self.stat(src)
            if info is None:
                raise NotFound("Stored object not found")
            if info.size > MAX_SINGLE_COPY:
                await self._multipart_copy(client, src, dst, info.size)
            else:
                await client.copy_object(Bucket=self.bucket, Key=dst, CopySource=source)
            await client.delete_object(Bucket=self.bucket, Key=src)
        except (ClientError, BotoCoreError) as exc:
            if _is_missing(exc):
                raise NotFound("Stored object not found") from exc
            raise _storage_error(exc, "move", f"{src} -> {dst}") from exc

    async def _multipart_copy(self, client: Any, src: str, dst: str, size: int) -> None:
        part_size = max(512 * 1024 * 1024, math.ceil(size / (MAX_PARTS - 1)))
        created = await client.create_multipart_upload(Bucket=self.bucket, Key=dst)
        upload_id = created["UploadId"]
        try:
            parts = []
            for number, offset in enumerate(range(0, size, part_size), start=1):
                last = min(offset + part_size, size) - 1
                response = await client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=dst,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": self.bucket, "Key": src},
                    CopySourceRange=f"bytes={offset}-{last}",
                )
                parts.append({"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]})
            await client.complete_multipart_upload(
                Bucket=self.bucket, Key=dst, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            await asyncio.shield(self._abort_multipart(client, dst, upload_id))
            raise

    # -- administration ---------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend_name,
            "bucket": self.bucket,
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "part_size": self.part_size,
            "credentials": "settings" if self._explicit_credentials else "environment",
        }

    async def reap_partial_writes(self, older_than: datetime) -> tuple[str, ...]:
        # A writer killed mid-upload, or cut off from S3 so that its abort
        # failed, leaves an incomplete multipart upload: invisible to
        # listings, yet its parts stay stored (and billed).
        client = await self._get_client()
        removed: list[str] = []
        try:
            paginator = client.get_paginator("list_multipart_uploads")
            async for page in paginator.paginate(Bucket=self.bucket):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < older_than:
                        await client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        removed.append(upload["Key"])
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, "clean", "incomplete uploads") from exc
        return tuple(removed)

    async def health(self) -> None:
        client = await self._get_client()
        try:
            await client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, "reach bucket", self.bucket) from exc
