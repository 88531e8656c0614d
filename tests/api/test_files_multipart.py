"""The fast form-data part reader gives exactly what aiohttp's part reader gives.

Each body is parsed twice from a stream fed in the same pieces: once with
``BodyPartReader.read_chunk`` only, once with the fast reader for file parts.
Parts, bytes, the position where the multipart reader carries on, and errors
must all match, whatever the network chunking.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import BodyPartReader, MultipartReader, StreamReader
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict, CIMultiDictProxy

from api.files.uploads import FormStream, _part_chunks
from tests.support.media import png_bytes

# Truncated bodies cut part headers short too; aiohttp warns about those.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.BadContentDispositionHeader")

BOUNDARY = "t2mBoundary7"
DELIMITER = b"\r\n--" + BOUNDARY.encode()


class _Protocol:
    """The little of a protocol a StreamReader uses for flow control."""

    _reading_paused = False
    connected = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, resume_parser: bool = True) -> None:
        pass


def _body(parts: list[tuple[str, str | None, bytes]], *, closing: bool = True) -> bytes:
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += content + b"\r\n"
    if closing:
        out += f"--{BOUNDARY}--\r\n".encode()
    return out


def _stream(pieces: list[bytes]) -> StreamReader:
    stream = StreamReader(_Protocol(), 2**16, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
    for piece in pieces:
        stream.feed_data(piece)
    stream.feed_eof()
    return stream


async def _parse(pieces: list[bytes], *, fast: bool) -> list[object]:
    """Parts as (name, filename, bytes); an error ends the list as its repr."""
    stream = _stream(pieces)
    headers = CIMultiDictProxy(
        CIMultiDict({"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    )
    reader = MultipartReader(headers, stream)
    form_stream = FormStream(stream, DELIMITER) if fast else None
    parsed: list[object] = []
    try:
        while (part := await reader.next()) is not None:
            assert isinstance(part, BodyPartReader)
            data = b""
            if part.filename is not None:
                async for chunk in _part_chunks(part, form_stream):
                    data += chunk
            else:
                while chunk := await part.read_chunk(64):
                    data += chunk
            parsed.append((part.name, part.filename, data))
    except (ValueError, HttpProcessingError) as exc:
        parsed.append(repr(exc))
    return parsed


def _split(body: bytes, rng: random.Random, max_piece: int) -> list[bytes]:
    pieces, position = [], 0
    while position < len(body):
        size = rng.randint(1, max_piece)
        pieces.append(body[position : position + size])
        position += size
    return pieces


TRICKY = [
    b"",
    b"x",
    b"\r",
    b"\r\n",
    b"\r\n-",
    b"\r\n--",
    b"--" + BOUNDARY.encode()[:-1],
    b"--" + BOUNDARY.encode(),  # taken for the delimiter (aiohttp): a malformed body
    b"\r\n--" + BOUNDARY.encode()[:-1],
    b"\r\n--" + BOUNDARY.encode()[:-1] + b"X\r\n",
    b"a\r\n--t2mB\r\n--t2mBoundary\r\r\n--",
    bytes(range(256)) * 3,
    b"\r" * 40 + b"\r\n--" * 10,
]


@pytest.mark.parametrize("content", TRICKY)
async def test_fast_reader_matches_aiohttp_for_any_chunking(content: bytes) -> None:
    body = _body(
        [
            ("title", None, b"hello"),
            ("file", "a.bin", content),
            ("file", "b.bin", content[::-1] + content),
            ("note", None, b"\r\n--t2m"),
        ]
    )
    rng = random.Random(len(content))
    splits = [[body], [bytes([b]) for b in body]]
    splits += [_split(body, rng, max_piece) for max_piece in (2, 3, 7, 16, 40, 200)]
    for pieces in splits:
        expected = await _parse(pieces, fast=False)
        assert await _parse(pieces, fast=True) == expected
        if not content.startswith(b"--" + BOUNDARY.encode()):
            assert expected[1] == ("file", "a.bin", content)


async def test_fast_reader_matches_aiohttp_on_large_random_parts() -> None:
    rng = random.Random(7)
    content = rng.randbytes(300_000)
    body = _body([("file", "big.bin", content), ("file", "next.bin", content[:1000])])
    for max_piece in (1000, 65536, 300_000):
        pieces = _split(body, rng, max_piece)
        expected = await _parse(pieces, fast=False)
        assert await _parse(pieces, fast=True) == expected
        assert expected[0] == ("file", "big.bin", content)


@pytest.mark.parametrize("cut", [10, 60, 61, 75, 200, -30, -3])
async def test_fast_reader_fails_like_aiohttp_on_truncated_bodies(cut: int) -> None:
    body = _body([("file", "a.bin", b"0123456789" * 12)], closing=False)[:cut]
    for pieces in ([body], [bytes([b]) for b in body]):
        expected = await _parse(pieces, fast=False)
        assert await _parse(pieces, fast=True) == expected


async def test_fast_reader_matches_aiohttp_on_random_bodies() -> None:
    rng = random.Random(2024)
    delimiter_bits = [b"\r", b"\n", b"-", b"--", b"\r\n", b"t2m", BOUNDARY.encode(), b"x"]
    delimiter_bits += [DELIMITER, DELIMITER[2:], DELIMITER[2:] + b"--"]
    for _ in range(300):
        parts: list[tuple[str, str | None, bytes]] = []
        for _ in range(rng.randint(1, 3)):
            content = b"".join(rng.choice(delimiter_bits) for _ in range(rng.randint(0, 12)))
            filename = "a.bin" if rng.random() < 0.8 else None
            parts.append(("file", filename, content))
        body = _body(parts, closing=rng.random() < 0.9)
        if rng.random() < 0.2:
            body = body[: rng.randint(0, len(body))]
        pieces = _split(body, rng, rng.choice([1, 2, 3, 5, 9, 30, 1000]))
        assert await _parse(pieces, fast=True) == await _parse(pieces, fast=False), pieces


async def test_chunked_upload_through_the_api(client: Any, make_user: Any) -> None:
    """A chunked request body (no Content-Length) in uneven chunks, then a field."""
    user = await make_user()
    content = png_bytes() + random.Random(3).randbytes(200_000) + b"\r\n--" + b"\r" * 3

    async def pieces() -> AsyncIterator[bytes]:
        rng = random.Random(5)
        position = 0
        while position < len(content):
            size = rng.choice([1, 7, 100, 4096, 70_000])
            yield content[position : position + size]
            position += size

    writer = aiohttp.MultipartWriter("form-data")
    part = writer.append(pieces(), {"Content-Type": "application/octet-stream"})
    part.set_content_disposition("form-data", name="file", filename="p.png")
    field = writer.append("after the file")
    field.set_content_disposition("form-data", name="description")
    response = await client.post("/api/v1/files/upload", data=writer, headers=user.headers)
    assert response.status == 201, await response.text()
    data = (await response.json())["data"]
    assert data["size"] == len(content)
    assert data["description"] == "after the file"
    download = await client.get(f"/api/v1/files/{data['id']}/download", headers=user.headers)
    assert await download.read() == content
