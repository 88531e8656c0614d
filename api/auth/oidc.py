"""Verify access tokens of an external OpenID provider (Clerk, Auth0, …).

Keys come from the provider's JWKS URL, cached and refreshed when a token
names an unknown key id (key rotation), at most once per ``min_refresh_s``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import jwt
from aiohttp import ClientError, ClientSession, ClientTimeout

from t2m.errors import AuthExpired, AuthInvalid, ServiceUnavailable

log = logging.getLogger(__name__)

ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
# What providers put in a token to say what it is for, where they say it at
# all: the ``typ`` header (RFC 9068: ``at+jwt``), a ``typ`` claim (Keycloak:
# ``Bearer`` / ``ID`` / ``Refresh``) or a ``token_use`` claim (Cognito:
# ``access`` / ``id``).  Only access tokens open the API: an ID token is meant
# for the client that asked for it, and may be handed to third parties.
ACCESS_HEADER_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})
ACCESS_CLAIM_TYPES = frozenset({"bearer", "access", "at+jwt"})
ACCESS_TOKEN_USES = frozenset({"access"})


def check_access_token(header: dict[str, Any], claims: dict[str, Any]) -> None:
    """Refuse a token that declares itself something other than an access token."""
    declared = (
        (header.get("typ"), ACCESS_HEADER_TYPES),
        (claims.get("typ"), ACCESS_CLAIM_TYPES),
        (claims.get("token_use"), ACCESS_TOKEN_USES),
    )
    for value, accepted in declared:
        if value is not None and str(value).lower() not in accepted:
            raise AuthInvalid("Only access tokens of the identity provider are accepted")


class OidcVerifier:
    def __init__(
        self,
        session: ClientSession,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        min_refresh_s: float = 30.0,
    ) -> None:
        self._session = session
        self.jwks_url = jwks_url
        self.issuer = issuer
        if not (jwks_url and issuer and audience):
            # Without an audience, a token the provider issued to any other
            # application of the same tenant would be accepted here.
            raise ValueError("an OIDC verifier needs a JWKS URL, an issuer and an audience")
        self.audience = audience
        self._min_refresh_s = min_refresh_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < self._min_refresh_s and self._keys:
                return
            try:
                async with self._session.get(
                    self.jwks_url, timeout=ClientTimeout(total=5)
                ) as response:
                    response.raise_for_status()
                    document = json.loads(await response.text())
            except (ClientError, TimeoutError, ValueError) as exc:
                log.warning("JWKS fetch from %s failed: %r", self.jwks_url, exc)
                if not self._keys:
                    raise ServiceUnavailable("The identity provider is unreachable") from exc
                return
            keys: dict[str, jwt.PyJWK] = {}
            for entry in document.get("keys", []):
                try:
                    key = jwt.PyJWK(entry)
                except jwt.PyJWTError:
                    continue  # keys of unsupported types are ignored, not fatal
                keys[entry.get("kid", "")] = key
            self._keys = keys
            self._fetched_at = time.monotonic()

    async def _key_for(self, kid: str) -> jwt.PyJWK:
        if kid not in self._keys:
            await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise AuthInvalid("Token is signed with an unknown key")
        return key

    async def verify(self, token: str, header: dict[str, Any]) -> dict[str, Any]:
        algorithm = header.get("alg")
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            raise AuthInvalid("Token algorithm is not accepted")
        key = await self._key_for(str(header.get("kid", "")))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iat", "sub", "iss", "aud"], "verify_aud": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthExpired("Token has expired") from exc
        except jwt.PyJWTError as exc:
            raise AuthInvalid("Token is invalid or malformed") from exc
        check_access_token(header, claims)
        return claims
