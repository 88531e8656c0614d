"""Root-path aliases of the workflow guide over the same file services."""

from __future__ import annotations

import aiohttp

from api.app import create_app
from tests.api.files_helpers import form
from tests.support.media import png_bytes


async def test_workflow_upload_contents_content_download_stream(client, make_user):
    user = await make_user()
    content = png_bytes()
    response = await client.post(
        "/upload",
        data=form(content, "example.png", title="Sample Image", description="Testing upload"),
        headers=user.headers,
    )
    assert response.status == 201, await response.text()
    item = await response.json()
    assert item["title"] == "Sample Image"
    content_id = item["content_id"]
    assert item["download_url"] == f"/download/{content_id}"

    listing = await (await client.get("/contents", headers=user.headers)).json()
    assert [c["content_id"] for c in listing["contents"]] == [content_id]
    assert listing["total"] == 1

    detail = await (await client.get(f"/content/{content_id}", headers=user.headers)).json()
    assert detail["description"] == "Testing upload"

    assert (
        await (await client.get(f"/download/{content_id}", headers=user.headers)).read() == content
    )
    response = await client.get(
        f"/stream/{content_id}", headers={**user.headers, "Range": "bytes=2-5"}
    )
    assert response.status == 206
    assert await response.read() == content[2:6]

    # The same record is visible on /api/v1.
    assert (await client.get(f"/api/v1/files/{content_id}", headers=user.headers)).status == 200


async def test_root_paths_need_a_token_unless_anonymous_is_allowed(aiohttp_client, settings, db):
    closed = await aiohttp_client(create_app(settings))
    response = await closed.get("/contents")
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "AUTH_REQUIRED"
    # /api/v1 never accepts anonymous callers.
    open_app = await aiohttp_client(create_app(settings.with_overrides(allow_anonymous=True)))
    response = await open_app.post("/upload", data=form(png_bytes(), "guest.png"))
    assert response.status == 201, await response.text()
    content_id = (await response.json())["content_id"]
    assert (await open_app.get(f"/content/{content_id}")).status == 200
    assert (await open_app.get("/api/v1/files")).status == 401


async def test_bucket_endpoints_are_for_admins(client, make_user):
    user = await make_user()
    admin = await make_user("ADMIN", verified=True)
    await client.post("/upload", data=form(png_bytes(), "x.png"), headers=user.headers)
    for path in ("/bucket/stats", "/bucket/list/uploads"):
        response = await client.get(path, headers=user.headers)
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "PERMISSION_DENIED"
        assert (await client.get(path)).status == 401
    stats = await (await client.get("/bucket/stats", headers=admin.headers)).json()
    assert stats["backend"] == "local"
    assert stats["segments"]["uploads"]["objects"] == 1
    assert "secret" not in str(stats).lower()
    listing = await (await client.get("/bucket/list/uploads", headers=admin.headers)).json()
    assert listing["count"] == 1
    assert listing["objects"][0]["key"].startswith("uploads/")
    response = await client.get("/bucket/list/etc", headers=admin.headers)
    assert response.status == 404


async def test_upload_field_must_be_named_file(client, make_user):
    user = await make_user()
    data = aiohttp.FormData()
    data.add_field("title", "no file here")
    response = await client.post("/upload", data=data, headers=user.headers)
    assert response.status == 400
    assert "file" in (await response.json())["error"]["details"]
