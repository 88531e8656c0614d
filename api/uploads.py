"""Receive multipart uploads: stream each file to storage, hash it, type it by content.

Bytes go straight from the socket to a ``tmp/`` object while sha256 and size
are computed; only one chunk is in memory at a time.  Once a file is complete
it is promoted to its content-addressed key (or dropped, when identical
content is already stored) and recorded.  Any failure — bad type, size limit,
client gone — removes every temporary object of the request.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from db import files as file_rows
from pipeline.stages.media_types import HEAD_BYTES, MediaType, detect_media_type
from t2m.errors import StorageError, ValidationFailed
from t2m.filenames import sanitize_filename
from t2m.ids import new_id
from t2m.storage import Storage, content_key, temp_upload_key

READ_CHUNK = 256 * 1024
MAX_FIELD_BYTES = 16 * 1024
SUPPORTED = "a document (PDF or text), image, video or audio file"


@dataclass
class ReceivedFile:
    tmp_key: str
    filename: str
    size: int
    sha256: str
    media: MediaType


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[ReceivedFile] = field(default_factory=list)


async def _field_text(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(8192):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise ValidationFailed(
                "Form field too long", {part.name or "field": [f"At most {MAX_FIELD_BYTES} bytes"]}
            )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            "Form fields must be UTF-8", {part.name or "field": ["Not valid UTF-8"]}
        ) from exc


async def _typed_chunks(
    part: BodyPartReader, field_name: str, detected: list[MediaType]
) -> AsyncIterator[bytes]:
    """The part's bytes; refuses unsupported content as soon as its head is read."""
    head = bytearray()
    while True:
        chunk = await part.read_chunk(READ_CHUNK)
        if not detected:
            head += chunk
            if len(head) < HEAD_BYTES and chunk:
                continue
            if not head:
                raise ValidationFailed("The file is empty", {field_name: ["Zero-byte file"]})
            media = detect_media_type(bytes(head), part.filename)
            if media is None:
                raise ValidationFailed(
                    "Unsupported file type", {field_name: [f"Upload {SUPPORTED}"]}
                )
            detected.append(media)
            yield bytes(head)
            head.clear()
        elif chunk:
            yield chunk
        if not chunk:
            return


async def receive_form(
    request: web.Request,
    storage: Storage,
    *,
    file_fields: tuple[str, ...],
    max_files: int,
    max_bytes: int,
) -> ReceivedForm:
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError) as exc:
        raise ValidationFailed(
            "Send the upload as multipart/form-data", {"file": ["Missing multipart body"]}
        ) from exc
    form = ReceivedForm()
    try:
        await _read_parts(reader, form, storage, file_fields, max_files, max_bytes)
    except BaseException:
        await discard(storage, form.files)
        raise
    return form


async def _read_parts(
    reader: MultipartReader,
    form: ReceivedForm,
    storage: Storage,
    file_fields: tuple[str, ...],
    max_files: int,
    max_bytes: int,
) -> None:
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ValidationFailed("Nested multipart bodies are not supported")
            name = part.name or ""
            if name in file_fields and part.filename is not None:
                if len(form.files) >= max_files:
                    raise ValidationFailed(
                        "Too many files", {name: [f"At most {max_files} files per request"]}
                    )
                form.files.append(await _store_part(part, name, storage, max_bytes))
            elif part.filename is not None:
                raise ValidationFailed(
                    "Unexpected file field",
                    {file_fields[0]: [f"Send the file as '{file_fields[0]}', not '{name}'"]},
                )
            else:
                form.fields[name] = await _field_text(part)
    except (ValueError, HttpProcessingError) as exc:  # aiohttp's parser on a malformed body
        raise ValidationFailed("Malformed multipart body", {"file": [str(exc)]}) from exc


async def _store_part(
    part: BodyPartReader, name: str, storage: Storage, max_bytes: int
) -> ReceivedFile:
    detected: list[MediaType] = []
    tmp_key = temp_upload_key()
    result = await storage.put_stream(
        tmp_key, _typed_chunks(part, name, detected), max_bytes=max_bytes
    )
    return ReceivedFile(
        tmp_key=tmp_key,
        filename=sanitize_filename(part.filename),
        size=result.size,
        sha256=result.sha256_hex,
        media=detected[0],
    )


async def discard(storage: Storage, files: list[ReceivedFile]) -> None:
    for received in files:
        with contextlib.suppress(StorageError):
            await storage.delete(received.tmp_key)


async def promote(storage: Storage, received: ReceivedFile) -> str:
    """Move a received file to its content-addressed key; return that key."""
    key = content_key(received.sha256)
    if await storage.exists(key):
        await storage.delete(received.tmp_key)  # identical bytes are stored already
    else:
        await storage.move(received.tmp_key, key)
    return key


async def record_upload(
    conn: asyncpg.Connection,
    received: ReceivedFile,
    storage_key: str,
    *,
    owner_id: str,
    file_type: str,
    title: str | None,
    description: str | None,
    subdirectory: str | None,
    tags: list[str],
) -> asyncpg.Record:
    async with conn.transaction():
        await file_rows.add_blob_reference(
            conn,
            sha256=received.sha256,
            storage_key=storage_key,
            size=received.size,
            mime=received.media.mime,
        )
        fields: dict[str, Any] = {
            "id": new_id("file"),
            "owner_id": owner_id,
            "blob_sha256": received.sha256,
            "filename": received.filename,
            "title": title,
            "description": description,
            "content_type": received.media.mime,
            "file_type": file_type,
            "subdirectory": subdirectory,
            "size": received.size,
            "tags": tags,
        }
        return await file_rows.insert_file(conn, **fields)
