"""Root-path aliases of the workflow guide over the same file services."""

from __future__ import annotations

import aiohttp

from api.app import create_app
from tests.api.files_helpers import form
from tests.media_factory import png_bytes


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


async def _guest_upload(client, content: bytes, headers: dict[str, str] | None = None):
    return await client.post("/upload", data=form(content, "guest.png"), headers=headers or {})


async def test_each_anonymous_client_is_its_own_guest(aiohttp_client, settings, db):
    """Issue 14 item 8: in guest mode one anonymous client never sees another's uploads."""
    app = create_app(settings.with_overrides(allow_anonymous=True))
    first = await aiohttp_client(app)
    response = await _guest_upload(first, png_bytes(color=(1, 2, 3)))
    assert response.status == 201, await response.text()
    mine = (await response.json())["content_id"]
    token = response.headers["X-Guest-Token"]
    cookie = response.cookies["t2m_guest"]
    assert cookie.value == token and cookie["httponly"] and cookie["samesite"] == "Strict"
    # The cookie brings the same guest back, without a new token.
    response = await first.get("/contents")
    assert [c["content_id"] for c in (await response.json())["contents"]] == [mine]
    assert "X-Guest-Token" not in response.headers

    # Another client (no cookie) is another guest: nothing of the first is visible.
    first.session.cookie_jar.clear()
    listing = await (await first.get("/contents")).json()
    assert listing["contents"] == [] and listing["total"] == 0
    for path in (f"/content/{mine}", f"/download/{mine}", f"/stream/{mine}"):
        assert (await first.get(path)).status == 404, path
    # A forged or altered token is no one's: a new guest again.
    first.session.cookie_jar.clear()
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    response = await first.get("/contents", headers={"X-Guest-Token": forged})
    assert (await response.json())["contents"] == []
    assert response.headers["X-Guest-Token"] != token

    # The header alone (scripts) brings the first guest back.
    first.session.cookie_jar.clear()
    response = await first.get("/contents", headers={"X-Guest-Token": token})
    assert [c["content_id"] for c in (await response.json())["contents"]] == [mine]
    assert (await first.get(f"/content/{mine}", headers={"X-Guest-Token": token})).status == 200


async def test_a_dropped_guest_cookie_gives_no_fresh_quota(aiohttp_client, settings, db):
    client = await aiohttp_client(
        create_app(settings.with_overrides(allow_anonymous=True, quota_files=1))
    )
    assert (await _guest_upload(client, png_bytes(color=(4, 5, 6)))).status == 201
    client.session.cookie_jar.clear()
    response = await _guest_upload(client, png_bytes(color=(7, 8, 9)))
    assert response.status == 413, await response.text()
    assert (await response.json())["error"]["code"] == "QUOTA_EXCEEDED"


async def test_a_dropped_guest_cookie_gives_no_fresh_rate_budget(aiohttp_client, settings, db):
    client = await aiohttp_client(
        create_app(
            settings.with_overrides(
                allow_anonymous=True,
                rate_limit_enabled=True,
                rate_limit_uploads=20,
                rate_limit_guest_divisor=10,
            )
        )
    )
    for color in ((1, 1, 1), (2, 2, 2)):
        client.session.cookie_jar.clear()
        assert (await _guest_upload(client, png_bytes(color=color))).status == 201
    client.session.cookie_jar.clear()
    response = await _guest_upload(client, png_bytes(color=(3, 3, 3)))
    assert response.status == 429, await response.text()


async def test_stale_guests_are_reaped_with_their_files_only(
    aiohttp_client, settings, db, make_user
):
    """Only guest rows unused for GUEST_MAX_AGE_DAYS go, their files through the
    usual soft delete and purge; registered accounts are never touched."""
    from api.keys import STORAGE
    from pipeline.maintenance.context import MaintenanceContext
    from pipeline.maintenance.registry import run_task

    guest_settings = settings.with_overrides(allow_anonymous=True, guest_max_age_days=30)
    client = await aiohttp_client(create_app(guest_settings))
    stale = await _guest_upload(client, png_bytes(color=(11, 12, 13)))
    stale_file = (await stale.json())["content_id"]
    client.session.cookie_jar.clear()
    fresh = await _guest_upload(client, png_bytes(color=(14, 15, 16)))
    fresh_file = (await fresh.json())["content_id"]
    user = await make_user()  # a registered account, idle as long as the stale guest
    response = await client.post(
        "/upload", data=form(png_bytes(color=(17, 18, 19)), "u.png"), headers=user.headers
    )
    assert response.status == 201
    user_file = (await response.json())["content_id"]
    async with db.acquire() as conn:
        stale_owner = await conn.fetchval("SELECT owner_id FROM files WHERE id = $1", stale_file)
        await conn.execute(
            "UPDATE users SET last_sign_in_at = now() - interval '40 days'"
            " WHERE id = ANY($1::text[])",
            [stale_owner, user.id],
        )

    async def send(*_: object) -> str:
        return "unused"

    ctx = MaintenanceContext(db, guest_settings, client.app[STORAGE], send)
    result = await run_task(ctx, "reap_guests")
    assert result["files_deleted"] == 1 and result["guests_removed"] == []
    async with db.acquire() as conn:
        hidden = {
            r["id"] for r in await conn.fetch("SELECT id FROM files WHERE deleted_at IS NOT NULL")
        }
    assert hidden == {stale_file}
    await run_task(ctx, "purge_deleted", grace_hours=0)
    result = await run_task(ctx, "reap_guests")
    assert result["guests_removed"] == [stale_owner]
    async with db.acquire() as conn:
        users = {r["id"] for r in await conn.fetch("SELECT id FROM users")}
        live = {r["id"] for r in await conn.fetch("SELECT id FROM files")}
    assert stale_owner not in users and user.id in users
    assert {fresh_file, user_file} <= live
