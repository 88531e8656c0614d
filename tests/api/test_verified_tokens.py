"""Remembered token verifications: expiry and revocation still apply on every use."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from api.auth.verified_tokens import VerifiedTokens
from t2m.settings import Settings
from tests.support.tokens import access_token


def test_remembers_until_expiry_and_evicts_the_least_recently_used() -> None:
    tokens = VerifiedTokens(size=2)
    now = time.time()
    tokens.remember("a", {"exp": now + 60})
    tokens.remember("b", {"exp": now + 60})
    assert tokens.get("a") == {"exp": now + 60}  # "a" is now the most recent
    tokens.remember("c", {"exp": now + 60})
    assert tokens.get("b") is None
    assert tokens.get("a") is not None and tokens.get("c") is not None
    tokens.remember("expired", {"exp": now - 1})  # evicts "a", the least recent
    assert tokens.get("expired") is None  # and is forgotten
    assert tokens.get("a") is None
    assert len(tokens) == 1


async def test_a_remembered_token_still_expires(
    client: Any, make_user: Any, settings: Settings
) -> None:
    user = await make_user()
    short = access_token(settings, user.id, ttl_s=1)
    headers = {"Authorization": f"Bearer {short}"}
    assert (await client.get("/api/v1/auth/me", headers=headers)).status == 200
    await asyncio.sleep(2.1)  # "exp" has whole seconds
    response = await client.get("/api/v1/auth/me", headers=headers)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "AUTH_EXPIRED"


async def test_a_remembered_token_is_refused_once_revoked(client: Any, make_user: Any) -> None:
    user = await make_user()
    assert (await client.get("/api/v1/auth/me", headers=user.headers)).status == 200
    assert (await client.post("/api/v1/auth/logout", headers=user.headers)).status == 200
    response = await client.get("/api/v1/auth/me", headers=user.headers)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "AUTH_INVALID"
