"""Registration modes (REGISTRATION=open|approval|closed), approval of pending
accounts, and admins' per-user quota overrides."""

from __future__ import annotations

import pytest

from api.app import create_app
from db.bootstrap import ensure_admin
from tests.api.files_helpers import form, upload
from tests.support.errors import assert_error
from tests.support.media import png_bytes

PASSWORD = "s3cret-pass-word"


async def _register(client, name: str):
    return await client.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.test", "password": PASSWORD},
    )


async def _login(client, name: str, password: str = PASSWORD):
    return await client.post("/api/v1/auth/login", json={"username": name, "password": password})


@pytest.fixture
async def app_with(aiohttp_client, settings, db):
    async def build(**overrides: object):
        return await aiohttp_client(create_app(settings.with_overrides(**overrides)))

    return build


# -- registration ----------------------------------------------------------------


async def test_open_registration_signs_in_at_once(app_with):
    client = await app_with(registration="open")
    response = await _register(client, "olga")
    assert response.status == 201, await response.text()
    assert (await response.json())["data"]["pending_approval"] is False
    assert (await _login(client, "olga")).status == 200


async def test_closed_registration_is_403_and_creates_nothing(app_with, db):
    client = await app_with(registration="closed")
    await assert_error(await _register(client, "carl"), 403, "REGISTRATION_CLOSED")
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM users WHERE username = 'carl'") == 0
        # The command line's create-admin is not affected.
        assert await ensure_admin(conn, username="root", email="root@example.test")
        assert await conn.fetchval("SELECT role FROM users WHERE username = 'root'") == "ADMIN"


async def test_approval_mode_keeps_the_account_out_until_an_admin_approves(app_with, make_user):
    client = await app_with(registration="approval")
    response = await _register(client, "pat")
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["data"]["pending_approval"] is True
    assert "approve" in body["message"]
    user_id = body["data"]["id"]

    await assert_error(await _login(client, "pat"), 403, "ACCOUNT_PENDING")
    # The wrong password learns nothing about the account.
    await assert_error(await _login(client, "pat", "not-the-password"), 401, "AUTH_INVALID")
    # The root-path sign-in too.
    response = await client.post("/login", data={"username": "pat", "password": PASSWORD})
    await assert_error(response, 403, "ACCOUNT_PENDING")

    admin = await make_user("ADMIN")
    user = await make_user()
    listing = await client.get("/api/v1/admin/users?pending=true", headers=admin.headers)
    assert listing.status == 200, await listing.text()
    items = (await listing.json())["data"]["items"]
    assert [item["id"] for item in items] == [user_id]
    assert items[0]["is_active"] is False

    response = await client.post(f"/api/v1/admin/users/{user_id}/approve", headers=user.headers)
    await assert_error(response, 403, "PERMISSION_DENIED")
    response = await client.post(f"/api/v1/admin/users/{user_id}/approve", headers=admin.headers)
    assert response.status == 200, await response.text()
    assert (await response.json())["data"]["pending_approval"] is False
    assert (await _login(client, "pat")).status == 200

    response = await client.post(f"/api/v1/admin/users/{user_id}/approve", headers=admin.headers)
    await assert_error(response, 409, "CONFLICT")
    response = await client.post(
        "/api/v1/admin/users/usr_" + "0" * 24 + "/approve", headers=admin.headers
    )
    await assert_error(response, 404, "RESOURCE_NOT_FOUND")
    response = await client.post("/api/v1/admin/users/nonsense/approve", headers=admin.headers)
    await assert_error(response, 404, "RESOURCE_NOT_FOUND")


def test_registration_setting_is_checked_at_start():
    from t2m.errors import ConfigError
    from t2m.settings import Settings

    env = {"T2M_ENV": "test", "JWT_SECRET": "j" * 40, "SIGNING_SECRET": "s" * 40}
    assert Settings.from_env(env).registration == "open"
    assert Settings.from_env({**env, "REGISTRATION": "Approval"}).registration == "approval"
    with pytest.raises(ConfigError, match="REGISTRATION"):
        Settings.from_env({**env, "REGISTRATION": "invite-only"})
    with pytest.raises(ConfigError, match="QUOTA_FILES"):
        Settings.from_env({**env, "QUOTA_FILES": "-1"})


# -- quota overrides -------------------------------------------------------------


async def test_admin_overrides_a_user_s_quota_and_resets_it(app_with, make_user):
    client = await app_with(quota_stored_bytes=1_000_000, quota_concurrent_jobs=3)
    admin, user, other = await make_user("ADMIN"), await make_user(), await make_user()
    path = f"/api/v1/admin/users/{user.id}/quota"

    response = await client.get(path, headers=admin.headers)
    assert response.status == 200, await response.text()
    data = (await response.json())["data"]
    assert data["overrides"] == dict.fromkeys(
        ("stored_bytes", "files", "render_seconds_per_day", "concurrent_jobs")
    )
    assert data["defaults"]["stored_bytes"] == 1_000_000

    response = await client.patch(
        path, json={"stored_bytes": 100, "concurrent_jobs": 0}, headers=admin.headers
    )
    assert response.status == 200, await response.text()
    data = (await response.json())["data"]
    assert data["overrides"]["stored_bytes"] == 100
    assert data["quota"]["stored_bytes"]["limit"] == 100

    me = await (await client.get("/api/v1/auth/me", headers=user.headers)).json()
    assert me["quota"]["stored_bytes"]["limit"] == 100
    assert me["quota"]["concurrent_jobs"]["limit"] == 0
    response = await client.post(
        "/api/v1/files/upload", data=form(png_bytes()), headers=user.headers
    )
    await assert_error(response, 413, "QUOTA_EXCEEDED")
    response = await client.post(
        "/api/v1/videos/generate", json={"script": "One scene."}, headers=user.headers
    )
    await assert_error(response, 429, "QUOTA_EXCEEDED")
    await upload(client, other, png_bytes())  # another user keeps the default

    # null: back to the default; fields not sent stay as they are.
    response = await client.patch(path, json={"stored_bytes": None}, headers=admin.headers)
    data = (await response.json())["data"]
    assert data["overrides"]["stored_bytes"] is None
    assert data["overrides"]["concurrent_jobs"] == 0
    assert data["quota"]["stored_bytes"]["limit"] == 1_000_000
    await upload(client, user, png_bytes())


async def test_quota_overrides_refuse_bad_input_and_non_admins(app_with, make_user):
    client = await app_with()
    admin, user = await make_user("ADMIN"), await make_user()
    path = f"/api/v1/admin/users/{user.id}/quota"
    for bad in ({"files": -1}, {"files": "many"}, {"stored_bytes": 2**63}, {"unknown": 1}):
        response = await client.patch(path, json=bad, headers=admin.headers)
        assert response.status in (400, 422), (bad, await response.text())
        assert (await response.json())["error"]["code"] == "VALIDATION_ERROR"
    response = await client.patch(path, json={"files": 5}, headers=user.headers)
    await assert_error(response, 403, "PERMISSION_DENIED")
    response = await client.get(path, headers=user.headers)
    await assert_error(response, 403, "PERMISSION_DENIED")
    response = await client.patch(
        "/api/v1/admin/users/usr_" + "0" * 24 + "/quota", json={"files": 5}, headers=admin.headers
    )
    await assert_error(response, 404, "RESOURCE_NOT_FOUND")
    response = await client.get(path, headers=admin.headers)
    assert (await response.json())["data"]["overrides"]["files"] is None  # nothing changed
