"""Upload forms are bounded while they stream: text fields by count and total
size, file parts by count; past a bound the answer is 413 and memory stays flat.

The flood test runs the real API (``t2m serve``) in its own process and reads
its resident set from ``/proc``: only a separate process shows what one
request costs the server.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from t2m.settings import Settings
from tests.faults.servers import ApiProcess, service_env, user_token

BOUNDARY = "limitsboundary3f9a"
FORM_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def field_part(name: str, value: bytes) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value
        + b"\r\n"
    )


def file_part(field: str = "file", filename: str = "dot.png") -> bytes:
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return head + PNG + b"\r\n"


CLOSE = f"--{BOUNDARY}--\r\n".encode()


async def post_form(client: TestClient, user: Any, body: bytes, path: str) -> Any:
    response = await client.post(
        path, data=body, headers={**user.headers, "Content-Type": FORM_TYPE}
    )
    return response.status, await response.json()


async def upload_after(client: TestClient, user: Any, fields: bytes) -> Any:
    """An upload of the one file part, preceded by ``fields``: (status, body)."""
    return await post_form(client, user, fields + file_part() + CLOSE, "/api/v1/files/upload")


# Repeated names count too: a field is a part, whatever its name.
@pytest.mark.parametrize(
    ("name_of", "value"),
    [(lambda i: f"f{i}", b"x"), (lambda i: "title", b"again")],
    ids=["distinct-names", "repeated-names"],
)
async def test_field_count_is_capped_with_413(
    client: TestClient, make_user: Any, name_of: Callable[[int], str], value: bytes
) -> None:
    user = await make_user()
    limit = Settings().upload_max_fields
    fields = b"".join(field_part(name_of(i), value) for i in range(limit + 1))
    status, body = await upload_after(client, user, fields)
    assert status == 413, body
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "UPLOAD_MAX_FIELDS" in str(body["error"]["details"])
    # One fewer is an ordinary upload (unknown fields are ignored).
    fields = b"".join(field_part(name_of(i), value) for i in range(limit))
    status, body = await upload_after(client, user, fields)
    assert status == 201, body


async def test_fields_total_size_is_capped_with_413(client: TestClient, make_user: Any) -> None:
    user = await make_user()
    total = Settings().upload_max_fields_bytes
    # Each field is under the 16 KiB a field may hold; together they are not.
    value = b"y" * 15_000
    count = total // len(value) + 1
    fields = b"".join(field_part(f"d{i}", value) for i in range(count))
    status, body = await upload_after(client, user, fields)
    assert status == 413, body
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert "UPLOAD_MAX_FIELDS_BYTES" in str(body["error"]["details"])


async def test_file_parts_are_capped(client: TestClient, make_user: Any) -> None:
    user = await make_user()
    body = file_part() + file_part(filename="second.png") + CLOSE
    status, answer = await post_form(client, user, body, "/api/v1/files/upload")
    assert status == 400, answer
    assert "At most 1 files" in str(answer["error"]["details"])


# -- the flood, against a real server process -----------------------------------

FLOOD_BYTES = 200 * 1024 * 1024
FIELD_VALUE = b"z" * 4000
MAX_GROWTH = 16 * 1024 * 1024


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{key} not in /proc/{pid}/status")


class RssSampler:
    """The largest resident set a process reaches while this runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = _status_kib(pid, "VmRSS")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_kib = max(self.peak_kib, _status_kib(self.pid, "VmRSS"))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, _status_kib(self.pid, "VmRSS"))


async def _flood() -> AsyncIterator[bytes]:
    sent = 0
    number = 0
    while sent < FLOOD_BYTES:
        chunk = b"".join(field_part(f"n{number + i}", FIELD_VALUE) for i in range(64))
        number += 64
        sent += len(chunk)
        yield chunk
    yield file_part() + CLOSE


@pytest.fixture
def api_process(settings: Settings, db: asyncpg.Pool, tmp_path: Path) -> Iterator[ApiProcess]:
    api = ApiProcess(service_env(settings), tmp_path / "api.log")
    try:
        yield api
    finally:
        api.stop()


async def test_field_flood_is_refused_while_streaming_and_memory_stays_flat(
    settings: Settings, api_process: ApiProcess
) -> None:
    token = await user_token(settings.database_url, settings, f"flood{secrets.token_hex(3)}")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": FORM_TYPE}
    async with aiohttp.ClientSession() as session:
        # Warm the upload path once (imports, pools) so the flood is measured alone.
        async with session.post(
            f"{api_process.base_url}/api/v1/files/upload",
            data=file_part() + CLOSE,
            headers=headers,
        ) as warm:
            assert warm.status == 201, await warm.text()
        before_kib = _status_kib(api_process.pid, "VmRSS")
        with RssSampler(api_process.pid) as sampler:
            async with session.post(
                f"{api_process.base_url}/api/v1/files/upload", data=_flood(), headers=headers
            ) as response:
                status = response.status
                answer = await response.json()
    assert status == 413, answer
    assert answer["error"]["code"] == "PAYLOAD_TOO_LARGE"
    growth = (sampler.peak_kib - before_kib) * 1024
    assert growth < MAX_GROWTH, f"the API grew by {growth / 2**20:.1f} MiB"
