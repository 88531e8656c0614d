"""Who is calling: bearer tokens (ours or an external OpenID provider's).

Handlers ask for what they need — ``await require_user(request)``,
``require_admin``, ``require_verified`` — and the principal is resolved once per
request.  A token that is present but bad is always an error, even on an
endpoint that would accept an anonymous caller.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import asyncpg
import jwt
from aiohttp import web

from api.auth.guests import guest_row
from api.auth.oidc import OidcVerifier
from api.auth.reserved_names import reserved_fields
from api.auth.verified_tokens import VerifiedTokens
from api.keys import DB_POOL, SETTINGS
from db import users as user_rows
from t2m.errors import AuthInvalid, AuthRequired, Conflict, PermissionDenied
from t2m.settings import Settings
from t2m.tokens import decode_token

_PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal")


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    email: str
    role: str
    email_verified: bool
    full_name: str | None
    image_url: str | None
    created_at: datetime | None
    last_sign_in_at: datetime | None
    source: Literal["local", "oidc", "guest"]
    token_jti: str | None = None
    token_expires_at: int | None = None
    # The account's token generation when the principal was resolved: tokens
    # minted on its behalf (job-events tokens) carry it, so that signing out
    # everywhere or a password change ends them too.
    token_generation: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role == "ADMIN"

    @classmethod
    def from_row(
        cls,
        row: asyncpg.Record,
        source: Literal["local", "oidc", "guest"],
        claims: dict[str, Any] | None = None,
    ) -> Principal:
        return cls(
            user_id=row["id"],
            username=row["username"],
            email=row["email"],
            role=row["role"],
            email_verified=row["email_verified"],
            full_name=row["full_name"],
            image_url=row["image_url"],
            created_at=row["created_at"],
            last_sign_in_at=row["last_sign_in_at"],
            source=source,
            token_jti=(claims or {}).get("jti"),
            token_expires_at=(claims or {}).get("exp"),
            token_generation=row["token_generation"],
        )


class Authenticator:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, oidc: OidcVerifier | None) -> None:
        self.settings = settings
        self.pool = pool
        self.oidc = oidc
        self.verified = VerifiedTokens()

    async def authenticate(self, token: str) -> Principal:
        claims = self.verified.get(token)
        if claims is not None:
            return await self._local_user(claims)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthInvalid("Token is invalid or malformed") from exc
        algorithm = header.get("alg")
        if algorithm == "HS256":
            return await self._local(token)
        if self.oidc is not None and algorithm not in (None, "none"):
            return await self._external(token, header)
        raise AuthInvalid("Token algorithm is not accepted")

    async def _local(self, token: str) -> Principal:
        claims = decode_token(
            token, secret=self.settings.jwt_secret, issuer=self.settings.jwt_issuer, kind="access"
        )
        self.verified.remember(token, claims)
        return await self._local_user(claims)

    async def _local_user(self, claims: dict[str, Any]) -> Principal:
        """The principal of verified local claims, if not revoked and still active."""
        async with self.pool.acquire() as conn:
            row = await user_rows.user_for_token(
                conn, claims["sub"], claims["jti"], claims.get("fam")
            )
        # Tokens without a generation predate generations: generation 0.
        if row is not None and (row["revoked"] or claims.get("gen", 0) != row["token_generation"]):
            raise AuthInvalid("Token has been revoked")
        if row is None or not row["is_active"]:
            raise AuthInvalid("Token subject no longer exists")
        return Principal.from_row(row, "local", claims)

    async def _external(self, token: str, header: dict[str, Any]) -> Principal:
        assert self.oidc is not None
        claims = await self.oidc.verify(token, header)
        subject = f"{claims['iss']}|{claims['sub']}"
        async with self.pool.acquire() as conn:
            row = await user_rows.user_by_external_subject(conn, subject)
            if row is None:
                row = await self._provision(conn, subject, claims)
        if not row["is_active"]:
            raise AuthInvalid("Account is disabled")
        return Principal.from_row(row, "oidc", claims)

    async def _provision(
        self, conn: asyncpg.Connection, subject: str, claims: dict[str, Any]
    ) -> asyncpg.Record:
        """A new account for a provider identity seen for the first time.

        Linking rule: never auto-link.  An identity whose e-mail address a T2M
        account already holds (or that is reserved) is refused with 409: taking
        the provider's word for an address would let anyone who can register
        that address at the provider sign in as the local account's owner."""
        host = urlsplit(str(claims["iss"])).hostname or "external"
        email = str(claims.get("email") or f"{claims['sub']}@{host}")
        # Prefixed so an external identity can never take over a local
        # account's username (nor a reserved one).
        wanted = "ext-" + str(
            claims.get("preferred_username") or claims.get("username") or claims["sub"]
        )
        if (
            reserved_fields(self.settings, username=wanted, email=email).get("email")
            or ((await user_rows.username_or_email_taken(conn, wanted, email))["email"])
        ):
            raise _collision()
        # Another identity may hold the same preferred username: a suffix
        # from the subject keeps the two apart.
        suffix = hashlib.sha256(subject.encode()).hexdigest()[:8]
        for username in (wanted, f"{wanted}-{suffix}"):
            try:
                async with conn.transaction():
                    return await user_rows.upsert_external_user(
                        conn,
                        subject=subject,
                        username=username,
                        email=email,
                        email_verified=bool(claims.get("email_verified", False)),
                        full_name=claims.get("name"),
                        image_url=claims.get("picture") or claims.get("image_url"),
                    )
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name != "users_username_lower":
                    raise _collision() from exc  # the e-mail, taken meanwhile
        raise _collision()


AUTHENTICATOR = web.AppKey("authenticator", Authenticator)


def _collision() -> Conflict:
    return Conflict(
        "An account with this e-mail address already exists. Identities of the"
        " identity provider are never linked to existing accounts automatically:"
        " sign in with that account's password, or ask an administrator."
    )


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthInvalid("Authorization header must be 'Bearer <token>'")
    return token.strip()


async def optional_user(request: web.Request) -> Principal | None:
    if _PRINCIPAL in request:
        cached: Principal | None = request[_PRINCIPAL]
        return cached
    token = bearer_token(request)
    principal = (
        None if token is None else await request.config_dict[AUTHENTICATOR].authenticate(token)
    )
    request[_PRINCIPAL] = principal
    return principal


async def require_user(request: web.Request, *, allow_guest: bool = False) -> Principal:
    """The caller; with ``allow_guest`` (root-path aliases) each anonymous client
    acts as a guest of its own when ``ALLOW_ANONYMOUS`` is on."""
    principal = await optional_user(request)
    if principal is not None:
        return principal
    if allow_guest and request.config_dict[SETTINGS].allow_anonymous:
        guest = await _guest(request)
        request[_PRINCIPAL] = guest
        return guest
    raise AuthRequired("Authentication required: send 'Authorization: Bearer <token>'")


async def require_admin(request: web.Request) -> Principal:
    principal = await require_user(request)
    if not principal.is_admin:
        raise PermissionDenied("This endpoint is for administrators")
    return principal


async def require_verified(request: web.Request) -> Principal:
    principal = await require_user(request)
    if not principal.email_verified:
        raise PermissionDenied("Verify your e-mail address to use this endpoint")
    return principal


async def _guest(request: web.Request) -> Principal:
    """This anonymous client's own guest (see ``api.auth.guests``)."""
    app = request.config_dict
    row = await guest_row(request, app[SETTINGS], app[DB_POOL])
    return Principal.from_row(row, "guest")
