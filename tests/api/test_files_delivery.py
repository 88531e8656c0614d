"""Delivering stored bytes: batched analytics, and stored objects gone missing."""

from __future__ import annotations

import asyncio
import os

from api import background
from api.cache.glue import CACHE
from api.files import delivery as file_delivery
from api.keys import DB_POOL, STORAGE
from api.serving import Delivery
from t2m.storage import content_key
from tests.api.files_helpers import upload
from tests.support.media import png_bytes


async def _analytics(client, user, file_id: str) -> dict:
    response = await client.get(f"/api/v1/files/{file_id}/analytics", headers=user.headers)
    assert response.status == 200, await response.text()
    return (await response.json())["data"]


async def test_concurrent_responses_are_all_recorded(client, make_user):
    user = await make_user()
    content = png_bytes()
    file_id = (await upload(client, user, content))["id"]

    async def stream(start: int) -> None:
        headers = {**user.headers, "Range": f"bytes={start}-{start + 9}"}
        response = await client.get(f"/api/v1/files/{file_id}/stream", headers=headers)
        assert response.status == 206
        await response.read()

    async def download() -> None:
        response = await client.get(f"/api/v1/files/{file_id}/download", headers=user.headers)
        assert await response.read() == content

    await asyncio.gather(*(stream(i) for i in range(40)), *(download() for _ in range(7)))
    await background.drain()

    body = await _analytics(client, user, file_id)
    assert body["streams"] == 40
    assert body["downloads"] == 7
    assert body["stream_sessions"] == 40
    assert body["stream_bytes"] == 400
    assert body["bytes_served"] == 400 + 7 * len(content)
    assert body["last_accessed_at"] is not None


async def test_a_row_that_cannot_be_written_does_not_lose_its_batch(client, make_user):
    user = await make_user()
    file_id = (await upload(client, user, png_bytes()))["id"]
    delivery = Delivery(start=0, end=9, bytes_sent=10, duration_ms=1.0, completed=True)

    def served(of: str) -> file_delivery._Served:
        return file_delivery._Served(of, "stream", "original", user.id, delivery)

    # A stream session of a file that is gone breaks its foreign key.
    batch = [served(file_id), served("file_gone"), served(file_id)]
    async with client.app[DB_POOL].acquire() as conn:
        await file_delivery._record_batch(conn, batch)

    body = await _analytics(client, user, file_id)
    assert body["streams"] == 2
    assert body["stream_sessions"] == 2
    assert body["bytes_served"] == 20


async def _stored_path(client, data: dict) -> str:
    path = client.app[STORAGE].local_path(content_key(data["checksum"].removeprefix("sha256:")))
    assert path is not None
    return str(path)


async def test_a_missing_stored_object_is_an_error_answer_not_a_cut_body(client, make_user):
    user = await make_user()
    data = await upload(client, user, png_bytes())
    os.unlink(await _stored_path(client, data))
    response = await client.get(f"/api/v1/files/{data['id']}/download", headers=user.headers)
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "RESOURCE_NOT_FOUND"


async def test_a_short_stored_object_is_an_error_answer_not_a_cut_body(client, make_user):
    user = await make_user()
    data = await upload(client, user, png_bytes())
    os.truncate(await _stored_path(client, data), data["size"] - 5)
    path = f"/api/v1/files/{data['id']}/stream"
    ranged = await client.get(path, headers={**user.headers, "Range": "bytes=0-9"})
    assert ranged.status == 206  # what is asked for is still there
    assert len(await ranged.read()) == 10
    response = await client.get(path, headers=user.headers)
    assert response.status == 503
    assert (await response.json())["success"] is False


async def test_a_backlog_past_the_bound_drops_the_oldest(client, make_user, monkeypatch):
    user = await make_user()
    file_id = (await upload(client, user, png_bytes()))["id"]
    monkeypatch.setattr(file_delivery, "_MAX_PENDING", 5)
    pool, cache = client.app[DB_POOL], client.app[CACHE]
    for i in range(12):  # queued without yielding: the writer has not run yet
        delivery = Delivery(start=0, end=i, bytes_sent=i + 1, duration_ms=1.0, completed=True)
        file_delivery._queue(
            pool, cache, file_delivery._Served(file_id, "stream", "original", user.id, delivery)
        )
    assert file_delivery._logs[pool].dropped == 7
    await background.drain()

    body = await _analytics(client, user, file_id)
    assert body["streams"] == 5
    assert body["bytes_served"] == sum(range(8, 13))  # the five newest
