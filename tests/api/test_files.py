"""Uploads, listing, details, downloads with ranges and validators, deletion, dedup."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.files_helpers import form, upload
from tests.support.errors import assert_error
from tests.support.media import ELF_BYTES, png_bytes
from tests.support.polling import until


async def _stored_keys(client, prefix: str) -> list[str]:
    from api.keys import STORAGE

    return [info.key async for info in client.app[STORAGE].list(prefix)]


async def test_upload_detail_list_and_download(client, make_user):
    user = await make_user()
    content = png_bytes()
    data = await upload(client, user, content, "../../etc/holiday photo.png", description="Beach")
    assert data["file_type"] == "image"
    assert data["content_type"] == "image/png"
    assert data["size"] == len(content)
    assert data["filename"] == "holiday photo.png"  # directories stripped
    assert data["processing_status"] == "pending"
    assert data["checksum"].startswith("sha256:")

    file_id = data["id"]
    detail = (await (await client.get(f"/api/v1/files/{file_id}", headers=user.headers)).json())[
        "data"
    ]
    assert detail["description"] == "Beach"

    listing = await (await client.get("/api/v1/files", headers=user.headers)).json()
    assert [item["id"] for item in listing["data"]["items"]] == [file_id]
    assert listing["data"]["pagination"]["total_items"] == 1

    response = await client.get(f"/api/v1/files/{file_id}/download", headers=user.headers)
    assert response.status == 200
    assert await response.read() == content
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert 'filename="holiday photo.png"' in response.headers["Content-Disposition"]
    etag = response.headers["ETag"]

    response = await client.get(
        f"/api/v1/files/{file_id}/download", headers={**user.headers, "If-None-Match": etag}
    )
    assert response.status == 304
    response = await client.get(
        f"/api/v1/files/{file_id}/download",
        headers={**user.headers, "If-Modified-Since": response.headers["Last-Modified"]},
    )
    assert response.status == 304

    response = await client.get(
        f"/api/v1/files/{file_id}/download?inline=true", headers=user.headers
    )
    assert response.headers["Content-Disposition"].startswith("inline;")


@pytest.mark.parametrize(
    ("range_header", "status", "expected"),
    [
        ("bytes=0-9", 206, (0, 9)),
        ("bytes=10-", 206, (10, None)),
        ("bytes=-5", 206, (-5, None)),
        ("bytes=5-100000", 206, (5, None)),
        ("bytes=0-1,5-6", 200, None),  # multi-range: the whole body
    ],
)
async def test_range_requests(client, make_user, range_header, status, expected):
    user = await make_user()
    content = png_bytes()
    file_id = (await upload(client, user, content))["id"]
    response = await client.get(
        f"/api/v1/files/{file_id}/stream", headers={**user.headers, "Range": range_header}
    )
    assert response.status == status
    body = await response.read()
    if expected is None:
        assert body == content
        return
    start, end = expected
    want = content[start:] if end is None else content[start : end + 1]
    assert body == want
    first = len(content) + start if start < 0 else start
    assert (
        response.headers["Content-Range"] == f"bytes {first}-{first + len(want) - 1}/{len(content)}"
    )


@pytest.mark.parametrize(
    "range_header", ["bytes=999999-", "bytes=abc", "items=0-1", "bytes=5-2", "bytes=-0"]
)
async def test_bad_ranges_are_416(client, make_user, range_header):
    user = await make_user()
    file_id = (await upload(client, user, png_bytes()))["id"]
    response = await client.get(
        f"/api/v1/files/{file_id}/download", headers={**user.headers, "Range": range_header}
    )
    body = await assert_error(response, 416, "RANGE_NOT_SATISFIABLE")
    assert body["error"]["message"]
    assert response.headers["Content-Range"].startswith("bytes */")


async def test_identical_content_is_stored_once(client, make_user, db):
    user = await make_user()
    content = png_bytes(color=(1, 2, 3))
    first = await upload(client, user, content, "a.png")
    second = await upload(client, user, content, "b.png")
    assert first["id"] != second["id"]
    assert first["checksum"] == second["checksum"]
    assert len(await _stored_keys(client, "uploads/")) == 1
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT ref_count FROM blobs") == 2

    response = await client.delete(f"/api/v1/files/{first['id']}", headers=user.headers)
    assert response.status == 200
    assert (await client.get(f"/api/v1/files/{first['id']}", headers=user.headers)).status == 404
    response = await client.get(f"/api/v1/files/{second['id']}/download", headers=user.headers)
    assert await response.read() == content  # the other record's bytes survive
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT ref_count FROM blobs") == 1
    stats = (await (await client.get("/api/v1/files/stats", headers=user.headers)).json())["data"]
    assert stats["total_files"] == 1


async def test_users_see_only_their_own_files(client, make_user):
    alice, bob = await make_user(), await make_user()
    admin = await make_user("ADMIN", verified=True)
    file_id = (await upload(client, alice, png_bytes()))["id"]
    for path in ("", "/metadata", "/download", "/stream", "/thumbnail", "/analytics"):
        await assert_error(
            await client.get(f"/api/v1/files/{file_id}{path}", headers=bob.headers),
            404,
            "RESOURCE_NOT_FOUND",
        )
    await assert_error(
        await client.delete(f"/api/v1/files/{file_id}", headers=bob.headers),
        404,
        "RESOURCE_NOT_FOUND",
    )
    await assert_error(
        await client.post(f"/api/v1/files/{file_id}/signed-url", headers=bob.headers, json={}),
        404,
        "RESOURCE_NOT_FOUND",
    )
    listing = await (await client.get("/api/v1/files", headers=bob.headers)).json()
    assert listing["data"]["items"] == []
    assert (await client.get(f"/api/v1/files/{file_id}", headers=admin.headers)).status == 200


@pytest.mark.parametrize(
    ("content", "filename", "fields", "field"),
    [
        (ELF_BYTES, "tool.png", {}, "file"),  # an executable named like an image
        (b"", "empty.png", {}, "file"),
        (png_bytes(), "p.png", {"file_type": "video"}, "file_type"),
        (png_bytes(), "p.png", {"file_type": "spreadsheet"}, "file_type"),
        (png_bytes(), "p.png", {"subdirectory": "../../etc"}, "subdirectory"),
        (png_bytes(), "p.png", {"subdirectory": "/abs"}, "subdirectory"),
        (png_bytes(), "p.png", {"subdirectory": "a\x00b"}, "subdirectory"),
    ],
)
async def test_bad_uploads_leave_nothing_behind(
    client, make_user, db, content, filename, fields, field
):
    user = await make_user()
    response = await client.post(
        "/api/v1/files/upload", data=form(content, filename, **fields), headers=user.headers
    )
    body = await assert_error(response, 400, "VALIDATION_ERROR")
    assert field in body["error"]["details"]
    assert await _stored_keys(client, "tmp/") == []
    assert await _stored_keys(client, "uploads/") == []
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM files") == 0


async def test_missing_file_field_and_non_multipart(client, make_user):
    user = await make_user()
    data = form(png_bytes(), field="attachment")
    body = await assert_error(
        await client.post("/api/v1/files/upload", data=data, headers=user.headers),
        400,
        "VALIDATION_ERROR",
    )
    assert "file" in body["error"]["details"]
    await assert_error(
        await client.post("/api/v1/files/upload", json={"file": "x"}, headers=user.headers),
        400,
        "VALIDATION_ERROR",
    )
    await assert_error(
        await client.post(
            "/api/v1/files/upload",
            data=b"--xx\r\nbroken",
            headers={**user.headers, "Content-Type": "multipart/form-data; boundary=xx"},
        ),
        400,
        "VALIDATION_ERROR",
    )
    await assert_error(
        await client.post("/api/v1/files/upload", data=form(png_bytes())), 401, "AUTH_REQUIRED"
    )


async def test_oversized_upload_is_413_and_removed(aiohttp_client, settings, db, make_user):
    from api.app import create_app
    from api.keys import STORAGE

    client = await aiohttp_client(create_app(settings.with_overrides(max_upload_bytes=10_000)))
    user = await make_user()
    response = await client.post(
        "/api/v1/files/upload",
        data=form(png_bytes() + b"\0" * 20_000),
        headers=user.headers,
    )
    await assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert [i async for i in client.app[STORAGE].list("tmp/")] == []


async def test_disconnect_mid_upload_leaves_no_record_or_object(client, make_user, db):
    user = await make_user()
    boundary = "t2mboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode() + png_bytes()
    _reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        (
            "POST /api/v1/files/upload HTTP/1.1\r\n"
            f"Host: {client.host}\r\nAuthorization: {user.headers['Authorization']}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            "Content-Length: 10000000\r\n\r\n"
        ).encode()
        + head
        + b"\0" * 300_000
    )
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()  # gone, mid-body

    async def tmp_emptied() -> bool:
        return not await _stored_keys(client, "tmp/")

    await until(tmp_emptied, "the partial upload removed from tmp/", interval_s=0.1)
    assert await _stored_keys(client, "tmp/") == []
    assert await _stored_keys(client, "uploads/") == []
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM files") == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("items_per_page=0", "items_per_page"),
        ("items_per_page=101", "items_per_page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("file_type=zip", "file_type"),
    ],
)
async def test_list_validation(client, make_user, query, field):
    user = await make_user()
    body = await assert_error(
        await client.get(f"/api/v1/files?{query}", headers=user.headers), 400, "VALIDATION_ERROR"
    )
    assert field in body["error"]["details"]


async def test_pagination_and_type_filter(client, make_user):
    user = await make_user()
    ids = [
        (await upload(client, user, png_bytes(color=(i, i, i)), f"{i}.png"))["id"] for i in range(5)
    ]
    await upload(client, user, b"plain text notes\n" * 10, "notes.txt")
    body = await (
        await client.get(
            "/api/v1/files?file_type=image&items_per_page=2&page=2", headers=user.headers
        )
    ).json()
    page = body["data"]
    assert [item["id"] for item in page["items"]] == list(reversed(ids))[2:4]
    assert page["pagination"] == {
        "page": 2,
        "items_per_page": 2,
        "total_items": 5,
        "total_pages": 3,
        "has_next": True,
        "has_previous": True,
        "next_page": 3,
        "previous_page": 1,
    }
    docs = await (await client.get("/api/v1/files?file_type=document", headers=user.headers)).json()
    assert [i["file_type"] for i in docs["data"]["items"]] == ["document"]


async def test_wrong_shape_and_missing_ids_are_404(client, make_user):
    user = await make_user()
    for file_id in ("nope", "file_" + "0" * 24, "../etc/passwd", "file_XYZ"):
        response = await client.get(f"/api/v1/files/{file_id}", headers=user.headers)
        await assert_error(response, 404, "RESOURCE_NOT_FOUND")


async def test_batch_upload(client, make_user):
    user = await make_user()
    data = form(png_bytes(color=(9, 9, 9)), "one.png", field="files")
    data.add_field("files", b"hello world\n", filename="two.txt", content_type="text/plain")
    data.add_field("description", "both")
    response = await client.post("/api/v1/files/batch-upload", data=data, headers=user.headers)
    assert response.status == 201, await response.text()
    body = (await response.json())["data"]
    assert body["count"] == 2
    assert sorted(f["file_type"] for f in body["uploaded"]) == ["document", "image"]
    assert {f["description"] for f in body["uploaded"]} == {"both"}


async def test_cleanup_dry_run_then_for_real(client, make_user, db):
    user = await make_user()
    old = await upload(client, user, png_bytes(color=(5, 5, 5)), "old.png")
    new = await upload(client, user, b"text\n", "new.txt")
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE files SET created_at = now() - interval '10 days' WHERE id = $1", old["id"]
        )
    response = await client.post(
        "/api/v1/files/cleanup", json={"older_than_days": 5}, headers=user.headers
    )
    result = (await response.json())["data"]
    assert result["dry_run"] is True
    assert [f["id"] for f in result["files"]] == [old["id"]]
    assert (await client.get(f"/api/v1/files/{old['id']}", headers=user.headers)).status == 200
    response = await client.post(
        "/api/v1/files/cleanup",
        json={"older_than_days": 5, "dry_run": False},
        headers=user.headers,
    )
    assert (await response.json())["data"]["deleted"] == 1
    assert (await client.get(f"/api/v1/files/{old['id']}", headers=user.headers)).status == 404
    assert (await client.get(f"/api/v1/files/{new['id']}", headers=user.headers)).status == 200


async def test_download_and_stream_analytics(client, make_user):
    user = await make_user()
    file_id = (await upload(client, user, png_bytes()))["id"]
    await (await client.get(f"/api/v1/files/{file_id}/download", headers=user.headers)).read()
    await (
        await client.get(
            f"/api/v1/files/{file_id}/stream", headers={**user.headers, "Range": "bytes=0-9"}
        )
    ).read()
    for _ in range(20):
        body = (
            await (
                await client.get(f"/api/v1/files/{file_id}/analytics", headers=user.headers)
            ).json()
        )["data"]
        if body["stream_sessions"] == 1 and body["downloads"] == 1:
            break
        await asyncio.sleep(0.05)
    assert body["downloads"] == 1
    assert body["streams"] == 1
    assert body["stream_sessions"] == 1
    assert body["bytes_served"] >= 10
    assert body["last_accessed_at"] is not None


async def test_stream_quality_validation(client, make_user):
    user = await make_user()
    file_id = (await upload(client, user, png_bytes()))["id"]
    response = await client.get(
        f"/api/v1/files/{file_id}/stream?quality=720p", headers=user.headers
    )
    assert response.status == 200
    assert response.headers["X-T2M-Quality"] == "original"  # no renditions: falls back
    await assert_error(
        await client.get(f"/api/v1/files/{file_id}/stream?quality=ultra", headers=user.headers),
        400,
        "VALIDATION_ERROR",
    )
