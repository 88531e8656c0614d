"""The file endpoints on the S3 backend (moto's server), streamed and presigned."""

from __future__ import annotations

import aiohttp

from api.app import create_app
from tests.api.files_helpers import upload
from tests.support.media import png_bytes


async def test_upload_download_range_and_dedup_on_s3(aiohttp_client, s3_settings, db, make_user):
    client = await aiohttp_client(create_app(s3_settings))
    user = await make_user()
    content = png_bytes(120, 90)
    first = await upload(client, user, content, "a.png")
    second = await upload(client, user, content, "b.png")
    assert first["checksum"] == second["checksum"]

    response = await client.get(f"/api/v1/files/{first['id']}/download", headers=user.headers)
    assert response.status == 200
    assert await response.read() == content
    response = await client.get(
        f"/api/v1/files/{second['id']}/stream", headers={**user.headers, "Range": "bytes=-7"}
    )
    assert response.status == 206
    assert await response.read() == content[-7:]

    admin = await make_user("ADMIN", verified=True)
    stats = await (await client.get("/bucket/stats", headers=admin.headers)).json()
    assert stats["backend"] == "s3"
    assert stats["segments"]["uploads"]["objects"] == 1
    assert "testing-secret" not in str(stats)


async def test_presigned_redirect_mode(aiohttp_client, s3_settings, db, make_user):
    client = await aiohttp_client(create_app(s3_settings.with_overrides(s3_presign_downloads=True)))
    user = await make_user()
    content = png_bytes(30, 30)
    file_id = (await upload(client, user, content))["id"]
    response = await client.get(
        f"/api/v1/files/{file_id}/download", headers=user.headers, allow_redirects=False
    )
    assert response.status == 302
    async with aiohttp.ClientSession() as session, session.get(response.headers["Location"]) as s3:
        assert s3.status == 200
        assert await s3.read() == content
