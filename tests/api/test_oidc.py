"""Tokens from an external OpenID provider, verified through a JWKS served locally."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from api.app import create_app

ISSUER = "https://idp.example.test"
AUDIENCE = "t2m-api"


def _keypair(kid: str) -> tuple[Any, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    return private, {**public_jwk, "kid": kid, "alg": "RS256", "use": "sig"}


@pytest.fixture
async def provider(aiohttp_server):
    state: dict[str, Any] = {"keys": [], "hits": 0}

    async def jwks(request: web.Request) -> web.Response:
        state["hits"] += 1
        return web.json_response({"keys": state["keys"]})

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks)
    server = await aiohttp_server(app)
    state["url"] = str(server.make_url("/.well-known/jwks.json"))
    return state


@pytest.fixture
async def oidc_client(aiohttp_client, settings, db, provider):
    configured = settings.with_overrides(
        oidc_jwks_url=provider["url"], oidc_issuer=ISSUER, oidc_audience=AUDIENCE
    )
    return await aiohttp_client(create_app(configured))


def _token(
    private: Any, kid: str, *, headers: dict[str, Any] | None = None, **overrides: Any
) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user_2abc",
        "iat": now,
        "exp": now + 300,
        "email": "dana@example.test",
        "email_verified": True,
        "name": "Dana Example",
        **overrides,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid, **(headers or {})})


async def _me(client, token: str):
    return await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})


async def test_external_token_provisions_a_user(oidc_client, provider):
    private, public = _keypair("k1")
    provider["keys"] = [public]
    response = await _me(oidc_client, _token(private, "k1"))
    assert response.status == 200, await response.text()
    profile = await response.json()
    assert profile["email"] == "dana@example.test"
    assert profile["email_verified"] is True
    assert profile["full_name"] == "Dana Example"
    # The same subject maps to the same user next time.
    again = await (await _me(oidc_client, _token(private, "k1"))).json()
    assert again["id"] == profile["id"]
    verified = await oidc_client.get(
        "/api/v1/auth/test-verified",
        headers={"Authorization": f"Bearer {_token(private, 'k1')}"},
    )
    assert verified.status == 200


async def test_key_rotation_is_picked_up(oidc_client, provider):
    old_private, old_public = _keypair("old")
    provider["keys"] = [old_public]
    assert (await _me(oidc_client, _token(old_private, "old"))).status == 200
    new_private, new_public = _keypair("new")
    provider["keys"] = [old_public, new_public]
    # The verifier refreshes at most every 30 s; an unknown kid within that
    # window is refused rather than hammering the provider.
    verifier = oidc_client.app[
        __import__("api.auth.authn", fromlist=["AUTHENTICATOR"]).AUTHENTICATOR
    ].oidc
    verifier._fetched_at = 0.0
    assert (await _me(oidc_client, _token(new_private, "new"))).status == 200


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("wrong_issuer", "AUTH_INVALID"),
        ("expired", "AUTH_EXPIRED"),
        ("unknown_kid", "AUTH_INVALID"),
        ("wrong_key", "AUTH_INVALID"),
        ("alg_none", "AUTH_INVALID"),
        ("hs256_with_public_key", "AUTH_INVALID"),
    ],
)
async def test_external_token_failures(oidc_client, provider, case, code):
    private, public = _keypair("k1")
    provider["keys"] = [public]
    if case == "wrong_issuer":
        token = _token(private, "k1", iss="https://evil.example.test")
    elif case == "expired":
        token = _token(private, "k1", iat=int(time.time()) - 900, exp=int(time.time()) - 600)
    elif case == "unknown_kid":
        token = _token(private, "nope")
    elif case == "wrong_key":
        other, _ = _keypair("k1")
        token = _token(other, "k1")
    elif case == "alg_none":
        token = jwt.encode(
            {"iss": ISSUER, "sub": "x", "exp": int(time.time()) + 60}, "", algorithm="none"
        )
    else:
        # The classic confusion attack: HS256 keyed with the public key.
        token = jwt.api_jws.PyJWS().encode(
            json.dumps(
                {"iss": ISSUER, "sub": "x", "iat": int(time.time()), "exp": int(time.time()) + 60}
            ).encode(),
            b"not-our-secret-but-32-bytes-long!!",
            algorithm="HS256",
            headers={"kid": "k1"},
        )
    response = await _me(oidc_client, token)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == code


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        (
            {"OIDC_ISSUER": ISSUER, "OIDC_JWKS_URL": "https://idp.example.test/jwks"},
            "OIDC_AUDIENCE",
        ),
        ({"OIDC_ISSUER": ISSUER}, "OIDC_JWKS_URL, OIDC_AUDIENCE"),
        ({"OIDC_AUDIENCE": AUDIENCE}, "OIDC_ISSUER, OIDC_JWKS_URL"),
    ],
)
def test_oidc_settings_are_all_or_none(settings, given, missing):
    """Issue 14 item 10: half a provider configuration is a start-up error naming the rest."""
    from t2m.errors import ConfigError
    from t2m.settings import Settings

    environ = {"T2M_ENV": "test", "T2M_VAR_DIR": str(settings.var_dir), **given}
    with pytest.raises(ConfigError, match=f"^{missing} must be set"):
        Settings.from_env(environ)
    overrides = {k.lower(): v for k, v in given.items()}
    with pytest.raises(ConfigError, match=missing):
        create_app(settings.with_overrides(**overrides))
    # None at all: local accounts only.
    assert not Settings.from_env(
        {"T2M_ENV": "test", "T2M_VAR_DIR": str(settings.var_dir)}
    ).oidc_enabled


@pytest.mark.parametrize(
    ("case", "headers", "claims"),
    [
        ("no_audience", {}, {"aud": None}),
        ("other_audience", {}, {"aud": "another-app"}),
        ("id_token_cognito", {}, {"token_use": "id"}),
        ("id_token_keycloak", {}, {"typ": "ID"}),
        ("refresh_token_keycloak", {}, {"typ": "Refresh"}),
        ("id_token_header", {"typ": "id_token+jwt"}, {}),
    ],
)
async def test_only_access_tokens_for_this_audience(oidc_client, provider, case, headers, claims):
    private, public = _keypair("k1")
    provider["keys"] = [public]
    response = await _me(oidc_client, _token(private, "k1", headers=headers, **claims))
    assert response.status == 401, (case, await response.text())
    assert (await response.json())["error"]["code"] == "AUTH_INVALID"


@pytest.mark.parametrize(
    ("headers", "claims"),
    [
        ({"typ": "at+jwt"}, {}),
        ({"typ": "JWT"}, {"typ": "Bearer"}),
        ({}, {"token_use": "access"}),
        ({}, {"aud": [AUDIENCE, "another-app"]}),
    ],
)
async def test_declared_access_tokens_are_accepted(oidc_client, provider, headers, claims):
    private, public = _keypair("k1")
    provider["keys"] = [public]
    response = await _me(oidc_client, _token(private, "k1", headers=headers, **claims))
    assert response.status == 200, await response.text()


async def test_a_local_account_with_the_providers_email_is_never_auto_linked(
    oidc_client, provider, db
):
    """The provider says dana@example.test; a local account already has it: 409,
    and neither account is created nor changed (it used to be a 500)."""
    response = await oidc_client.post(
        "/api/v1/auth/register",
        json={"username": "dana", "email": "Dana@Example.test", "password": "s3cret-pass"},
    )
    assert response.status == 201, await response.text()
    private, public = _keypair("k1")
    provider["keys"] = [public]
    response = await _me(oidc_client, _token(private, "k1"))
    assert response.status == 409, await response.text()
    body = await response.json()
    assert body["error"]["code"] == "CONFLICT"
    assert "never linked" in body["error"]["message"]
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT username, external_subject FROM users")
    assert [(r["username"], r["external_subject"]) for r in rows] == [("dana", None)]


async def test_two_identities_with_one_preferred_username_get_two_accounts(oidc_client, provider):
    private, public = _keypair("k1")
    provider["keys"] = [public]
    first = await _me(
        oidc_client,
        _token(private, "k1", sub="a1", email="a1@example.test", preferred_username="sam"),
    )
    second = await _me(
        oidc_client,
        _token(private, "k1", sub="b2", email="b2@example.test", preferred_username="sam"),
    )
    assert first.status == 200 and second.status == 200, await second.text()
    names = {(await first.json())["username"], (await second.json())["username"]}
    assert len(names) == 2 and "ext-sam" in names
