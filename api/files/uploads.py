"""Receive multipart uploads: stream each file to storage, hash it, type it by content.

Bytes go straight from the socket to a ``tmp/`` object while sha256 and size
are computed; only one chunk is in memory at a time.  Once a file is complete
it is promoted to its content-addressed key (or dropped, when identical
content is already stored) and recorded.  Any failure — bad type, size limit,
client gone — removes every temporary object of the request.

The body of a ``multipart/form-data`` file part is read by :func:`_form_part_body`
straight off the request stream, one network chunk at a time, rather than with
``BodyPartReader.read_chunk``: that one copies every byte twice into a fresh
look-behind window (and faults in new pages for each), which made it the main
CPU cost of an upload.  Both give the same bytes and the same errors.

Text fields cost memory the API keeps until the request is answered, so a
form is bounded as it streams (:class:`FormLimits`): at most ``max_fields``
non-file parts holding at most ``max_fields_bytes`` together (names
included), each at most :data:`MAX_FIELD_BYTES`, and at most ``max_files``
file parts.  Crossing a count or the total answers 413 ``PAYLOAD_TOO_LARGE``
at once: nothing more of the body is read into the form (aiohttp drains and
drops what the client still sends), so memory stays flat whatever the size of
the request.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
from aiohttp import BodyPartReader, MultipartReader, StreamReader, hdrs, web
from aiohttp.helpers import parse_mimetype
from aiohttp.http_exceptions import HttpProcessingError

from db import files as file_rows
from pipeline.stages.media_types import HEAD_BYTES, MediaType, detect_media_type
from t2m.errors import PayloadTooLarge, StorageError, ValidationFailed
from t2m.filenames import sanitize_filename
from t2m.ids import new_id
from t2m.storage import Storage, content_key, temp_upload_key

READ_CHUNK = 256 * 1024
MAX_FIELD_BYTES = 16 * 1024
SUPPORTED = "a document (PDF or text), image, video or audio file"


@dataclass(frozen=True)
class FormLimits:
    """What one upload form may hold (see the module docstring)."""

    max_files: int
    max_file_bytes: int
    max_fields: int = 32
    max_fields_bytes: int = 64 * 1024


class UploadMeter(Protocol):
    """Told of each file part and its bytes as they arrive; raising refuses the
    upload there (``api.quotas.UploadQuota`` enforces the user's quota)."""

    async def file_started(self) -> None: ...

    async def bytes_received(self, count: int) -> None: ...


@dataclass
class ReceivedFile:
    tmp_key: str
    filename: str
    size: int
    sha256: str
    media: MediaType


@dataclass(frozen=True)
class FormStream:
    """The request body stream of a ``multipart/form-data`` request, and its delimiter."""

    stream: StreamReader
    delimiter: bytes  # CRLF--boundary


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[ReceivedFile] = field(default_factory=list)
    field_count: int = 0  # non-file parts seen, repeated names included
    field_bytes: int = 0  # their names and values, as sent


def _fields_too_large(limits: FormLimits) -> PayloadTooLarge:
    return PayloadTooLarge(
        "Too much form data",
        {
            "fields": [
                f"At most {limits.max_fields} text fields of at most"
                f" {limits.max_fields_bytes} bytes together (UPLOAD_MAX_FIELDS,"
                " UPLOAD_MAX_FIELDS_BYTES)"
            ]
        },
    )


async def _field_text(part: BodyPartReader, form: ReceivedForm, limits: FormLimits) -> str:
    name = part.name or ""
    form.field_count += 1
    form.field_bytes += len(name.encode())
    if form.field_count > limits.max_fields or form.field_bytes > limits.max_fields_bytes:
        raise _fields_too_large(limits)
    data = bytearray()
    while chunk := await part.read_chunk(8192):
        data += chunk
        form.field_bytes += len(chunk)
        if form.field_bytes > limits.max_fields_bytes:
            raise _fields_too_large(limits)
        if len(data) > MAX_FIELD_BYTES:
            raise ValidationFailed(
                "Form field too long", {name or "field": [f"At most {MAX_FIELD_BYTES} bytes"]}
            )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            "Form fields must be UTF-8", {part.name or "field": ["Not valid UTF-8"]}
        ) from exc


async def _next_chunk(stream: StreamReader) -> bytes:
    """The next network chunk of the request body; ``b""`` at its end."""
    while True:
        data, _end_of_http_chunk = await stream.readchunk()
        if data or stream.at_eof():
            return data


def _unread(stream: StreamReader, data: bytes) -> None:
    # aiohttp's multipart reader hands the boundary back to the stream the same
    # way (unread_data is deprecated for general use, not for this).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        stream.unread_data(data)


def _partial_delimiter_at(data: bytes, delimiter: bytes) -> int:
    """Where a suffix of ``data`` that could begin ``delimiter`` starts (or ``len(data)``)."""
    first = delimiter[:1]
    position = data.find(first, max(0, len(data) - len(delimiter) + 1))
    while position >= 0:
        if delimiter.startswith(data[position:]):
            return position
        position = data.find(first, position + 1)
    return len(data)


async def _form_part_body(stream: StreamReader, delimiter: bytes) -> AsyncGenerator[bytes, None]:
    """The body of the form-data part whose headers were just read, chunk by chunk.

    ``delimiter`` is ``CRLF--boundary``.  The bytes are those successive
    ``BodyPartReader.read_chunk`` calls return, but network chunks are passed on
    as they arrive (no copy) unless they end with what may be the start of the
    delimiter, which is held back until the next chunk settles it.  Once the
    delimiter is found it is handed back to the stream, which is then where
    ``read_chunk`` would have left it.  A body cut short ends the part with what
    came, as ``read_chunk`` does; the multipart reader then reports the error.
    """
    data = await _next_chunk(stream)
    # Like BodyPartReader, take an empty part's boundary right after its headers
    # (without the CRLF of the delimiter) for the delimiter.
    while data and len(data) < len(delimiter) - 2 and delimiter[2:].startswith(data):
        more = await _next_chunk(stream)
        if not more:
            break
        data += more
    if data.startswith(delimiter[2:]):
        _unread(stream, delimiter[:2] + data)
        return
    keep = len(delimiter) - 1
    held = b""  # a possible start of the delimiter, from the end of the last chunk
    while data:
        if held:
            if len(data) < keep:
                data = held + data  # too short to settle it: rescan both
            else:
                joint = held + data[:keep]  # any delimiter found here starts in `held`
                end = joint.find(delimiter)
                if end >= 0:
                    if end:
                        yield held[:end]
                    _unread(stream, held[end:] + data)
                    return
                yield held
            held = b""
        end = data.find(delimiter)
        if end >= 0:
            if end:
                yield data[:end]
            _unread(stream, data[end:])
            return
        cut = _partial_delimiter_at(data, delimiter)
        if cut < len(data):
            held = data[cut:]
            data = data[:cut]
        if data:
            yield data
        data = await _next_chunk(stream)
    if held:
        yield held


async def _part_chunks(
    part: BodyPartReader, form_stream: FormStream | None
) -> AsyncGenerator[bytes, None]:
    """The raw bytes of ``part``, read fast when it is a form-data part."""
    if form_stream is None:
        while chunk := await part.read_chunk(READ_CHUNK):
            yield chunk
        return
    async for chunk in _form_part_body(form_stream.stream, form_stream.delimiter):
        yield chunk
    if form_stream.stream.at_eof():
        return  # cut short: the multipart reader fails on it next, as it would have
    # The stream is at the delimiter: let the part reader consume it as its own
    # last read, so the multipart reader carries on from there.
    if await part.read_chunk(READ_CHUNK) or not part.at_eof():
        raise ValueError("Multipart part reader lost its position")


def _media_of(head: bytes, filename: str | None, field_name: str) -> MediaType:
    if not head:
        raise ValidationFailed("The file is empty", {field_name: ["Zero-byte file"]})
    media = detect_media_type(head, filename)
    if media is None:
        raise ValidationFailed("Unsupported file type", {field_name: [f"Upload {SUPPORTED}"]})
    return media


async def _typed_chunks(
    chunks: AsyncIterable[bytes], filename: str | None, field_name: str, detected: list[MediaType]
) -> AsyncGenerator[bytes, None]:
    """The part's bytes; refuses unsupported content as soon as its head is read."""
    head: list[bytes] = []
    size = 0
    async for chunk in chunks:
        if detected:
            yield chunk
            continue
        head.append(chunk)
        size += len(chunk)
        if size >= HEAD_BYTES:
            first = head[0] if len(head) == 1 else b"".join(head)
            head.clear()
            detected.append(_media_of(first, filename, field_name))
            yield first
    if not detected:  # a part shorter than HEAD_BYTES
        first = b"".join(head)
        detected.append(_media_of(first, filename, field_name))
        yield first


async def receive_form(
    request: web.Request,
    storage: Storage,
    *,
    file_fields: tuple[str, ...],
    limits: FormLimits,
    meter: UploadMeter | None = None,
) -> ReceivedForm:
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError) as exc:
        raise ValidationFailed(
            "Send the upload as multipart/form-data", {"file": ["Missing multipart body"]}
        ) from exc
    mimetype = parse_mimetype(request.headers[hdrs.CONTENT_TYPE])
    form_stream = None
    if mimetype.type == "multipart" and mimetype.subtype == "form-data":
        # The reader checked the boundary; form-data parts have no Content-Length.
        delimiter = b"\r\n--" + mimetype.parameters["boundary"].encode()
        form_stream = FormStream(request.content, delimiter)
    form = ReceivedForm()
    try:
        await _read_parts(reader, form_stream, form, storage, file_fields, limits, meter)
    except BaseException:
        await discard(storage, form.files)
        raise
    return form


async def _read_parts(
    reader: MultipartReader,
    form_stream: FormStream | None,
    form: ReceivedForm,
    storage: Storage,
    file_fields: tuple[str, ...],
    limits: FormLimits,
    meter: UploadMeter | None,
) -> None:
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ValidationFailed("Nested multipart bodies are not supported")
            name = part.name or ""
            if name in file_fields and part.filename is not None:
                if len(form.files) >= limits.max_files:
                    raise ValidationFailed(
                        "Too many files", {name: [f"At most {limits.max_files} files per request"]}
                    )
                form.files.append(
                    await _store_part(
                        part, form_stream, name, storage, limits.max_file_bytes, meter
                    )
                )
            elif part.filename is not None:
                raise ValidationFailed(
                    "Unexpected file field",
                    {file_fields[0]: [f"Send the file as '{file_fields[0]}', not '{name}'"]},
                )
            else:
                form.fields[name] = await _field_text(part, form, limits)
    except (ValueError, HttpProcessingError) as exc:  # aiohttp's parser on a malformed body
        raise ValidationFailed("Malformed multipart body", {"file": [str(exc)]}) from exc


async def _store_part(
    part: BodyPartReader,
    form_stream: FormStream | None,
    name: str,
    storage: Storage,
    max_bytes: int,
    meter: UploadMeter | None,
) -> ReceivedFile:
    detected: list[MediaType] = []
    tmp_key = temp_upload_key()
    if meter is not None:
        await meter.file_started()
    raw = _part_chunks(part, form_stream)
    typed = _typed_chunks(raw, part.filename, name, detected)
    metered = typed if meter is None else _metered(typed, meter)
    async with contextlib.aclosing(raw), contextlib.aclosing(typed), contextlib.aclosing(metered):
        # A refusal raised by the meter inside the stream makes the backend
        # abort and remove the partial object.
        result = await storage.put_stream(tmp_key, metered, max_bytes=max_bytes)
    return ReceivedFile(
        tmp_key=tmp_key,
        filename=sanitize_filename(part.filename),
        size=result.size,
        sha256=result.sha256_hex,
        media=detected[0],
    )


async def _metered(chunks: AsyncIterable[bytes], meter: UploadMeter) -> AsyncGenerator[bytes, None]:
    async for chunk in chunks:
        await meter.bytes_received(len(chunk))
        yield chunk


async def discard(storage: Storage, files: list[ReceivedFile]) -> None:
    for received in files:
        with contextlib.suppress(StorageError):
            await storage.delete(received.tmp_key)


async def promote(storage: Storage, received: ReceivedFile) -> tuple[str, bool]:
    """Move a received file to its content-addressed key; return that key and
    whether this call put the bytes there (False: identical bytes were stored)."""
    key = content_key(received.sha256)
    if await storage.exists(key):
        await storage.delete(received.tmp_key)
        return key, False
    await storage.move(received.tmp_key, key)
    return key, True


async def store_upload(
    conn: asyncpg.Connection,
    storage: Storage,
    received: ReceivedFile,
    *,
    owner_id: str,
    file_type: str,
    title: str | None,
    description: str | None,
    subdirectory: str | None,
    tags: list[str],
) -> asyncpg.Record:
    """Move the bytes to their content key and record the file, as one step
    under the blob's lock (see ``file_rows.lock_blob``)."""
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
    async with conn.transaction():
        await file_rows.lock_blob(conn, received.sha256)
        storage_key, stored_now = await promote(storage, received)
        try:
            await file_rows.add_blob_reference(
                conn,
                sha256=received.sha256,
                storage_key=storage_key,
                size=received.size,
                mime=received.media.mime,
            )
            return await file_rows.insert_file(conn, **fields)
        except BaseException:
            if stored_now:  # still under the lock: nothing else counts on these bytes
                with contextlib.suppress(StorageError):
                    await storage.delete(storage_key)
            raise
