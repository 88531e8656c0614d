"""Sign-in, registration, token refresh and revocation, shared by both API surfaces."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from aiohttp import web

from api.auth.authn import Principal
from api.auth.login_throttle import LoginThrottle
from api.auth.reserved_names import reserved_fields
from db import tokens as token_rows
from db import users as user_rows
from t2m.errors import AccountPending, AuthInvalid, Conflict, RegistrationClosed, ValidationFailed
from t2m.ids import new_id
from t2m.passwords import hash_password, needs_rehash, verify_password
from t2m.settings import Settings
from t2m.tokens import decode_token, issue_token

USER_PERMISSIONS = [
    "read_files",
    "upload_files",
    "generate_videos",
    "manage_webhooks",
    "submit_feedback",
]
ADMIN_PERMISSIONS = [
    *USER_PERMISSIONS,
    "read_all_files",
    "manage_storage",
    "view_logs",
    "run_maintenance",
]


def profile(principal_or_row: Principal | asyncpg.Record) -> dict[str, Any]:
    if isinstance(principal_or_row, Principal):
        p = principal_or_row
        return {
            "id": p.user_id,
            "username": p.username,
            "full_name": p.full_name,
            "email": p.email,
            "image_url": p.image_url,
            "email_verified": p.email_verified,
            "role": p.role,
            "created_at": p.created_at,
            "last_sign_in_at": p.last_sign_in_at,
        }
    row = principal_or_row
    return {
        "id": row["id"],
        "username": row["username"],
        "full_name": row["full_name"],
        "email": row["email"],
        "image_url": row["image_url"],
        "email_verified": row["email_verified"],
        "role": row["role"],
        "created_at": row["created_at"],
        "last_sign_in_at": row["last_sign_in_at"],
    }


def permissions_of(principal: Principal) -> dict[str, Any]:
    admin = principal.is_admin
    return {
        "user_id": principal.user_id,
        "role": principal.role,
        "permissions": ADMIN_PERMISSIONS if admin else USER_PERMISSIONS,
        "access_level": "admin" if admin else "standard",
    }


class AuthService:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, throttle: LoginThrottle) -> None:
        self.settings = settings
        self.pool = pool
        self.throttle = throttle

    def _token_pair(
        self, user_id: str, role: str, *, generation: int, family: str | None = None
    ) -> dict[str, Any]:
        """An access and a refresh token of one family (a new one at sign-in,
        the refresh token's own at rotation), at the user's token generation."""
        claims = {"fam": family or new_id("fam"), "gen": generation}
        access = issue_token(
            secret=self.settings.jwt_secret,
            issuer=self.settings.jwt_issuer,
            subject=user_id,
            role=role,
            kind="access",
            ttl_s=self.settings.access_token_ttl_s,
            extra_claims=claims,
        )
        refresh = issue_token(
            secret=self.settings.jwt_secret,
            issuer=self.settings.jwt_issuer,
            subject=user_id,
            role=role,
            kind="refresh",
            ttl_s=self.settings.refresh_token_ttl_s,
            extra_claims=claims,
        )
        return {
            "access_token": access.token,
            "refresh_token": refresh.token,
            "token_type": "bearer",
            "expires_in": self.settings.access_token_ttl_s,
        }

    async def login(self, username: str, password: str, address: str) -> dict[str, Any]:
        # Counted before the password is checked, so a parallel burst cannot
        # outrun the count.
        claim = await self.throttle.claim(username, address)
        await self.throttle.wait(claim)
        async with self.pool.acquire() as conn:
            row = await user_rows.user_by_login(conn, username)
        # A pending account's password is checked too, to tell its owner why
        # they cannot sign in yet.
        usable = row is not None and (row["is_active"] or row["pending_approval"])
        stored = row["password_hash"] if row is not None and usable else None
        # scrypt is CPU work: keep it off the event loop.
        if not await asyncio.to_thread(verify_password, password, stored):
            # One message for "no such user" and "wrong password".
            raise AuthInvalid("Invalid username or password")
        assert row is not None
        await self.throttle.succeeded(claim)
        if row["pending_approval"]:
            # Told only to whoever knows the password: it reveals nothing else.
            raise AccountPending(
                "This account is waiting for an administrator's approval; try again once approved"
            )
        # A hash made at an older, lower cost is replaced now that the
        # password is known to be right.
        fresh_hash = (
            await asyncio.to_thread(hash_password, password) if needs_rehash(stored) else None
        )
        async with self.pool.acquire() as conn:
            if fresh_hash is not None and stored is not None:
                await user_rows.replace_password_hash(conn, row["id"], stored, fresh_hash)
            await user_rows.touch_sign_in(conn, row["id"])
            row = await user_rows.user_by_id(conn, row["id"])
        assert row is not None
        pair = self._token_pair(row["id"], row["role"], generation=row["token_generation"])
        return {**pair, "user": profile(row)}

    async def register(
        self, *, username: str, email: str, password: str, full_name: str | None
    ) -> dict[str, Any]:
        """Create an account as REGISTRATION allows: at once, pending an
        admin's approval, or not at all (the CLI's create-admin is not affected)."""
        mode = self.settings.registration
        if mode == "closed":
            raise RegistrationClosed()
        reserved = reserved_fields(self.settings, username=username, email=email)
        if reserved:
            raise ValidationFailed("Request validation failed", reserved)
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self.pool.acquire() as conn:
            taken = await user_rows.username_or_email_taken(conn, username, email)
            if any(taken.values()):
                raise Conflict(
                    "Username or e-mail already registered",
                    {name: ["Already registered"] for name, used in taken.items() if used},
                )
            try:
                row = await user_rows.insert_user(
                    conn,
                    username=username,
                    email=email,
                    password_hash=password_hash,
                    full_name=full_name,
                    pending_approval=mode == "approval",
                )
            except asyncpg.UniqueViolationError as exc:  # a concurrent registration won
                raise Conflict("Username or e-mail already registered") from exc
        return {**profile(row), "pending_approval": row["pending_approval"]}

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        claims = decode_token(
            refresh_token,
            secret=self.settings.jwt_secret,
            issuer=self.settings.jwt_issuer,
            kind="refresh",
        )
        family = claims.get("fam")
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                row = await user_rows.user_by_id(conn, claims["sub"])
                if row is None or not row["is_active"]:
                    raise AuthInvalid("Token subject no longer exists")
                if claims.get("gen", 0) != row["token_generation"]:
                    raise AuthInvalid("Token has been revoked")
                if family is not None and await token_rows.family_revoked(conn, family):
                    raise AuthInvalid("Token has been revoked")
                # Rotation: a refresh token works once.
                rotated = await token_rows.revoke_token(
                    conn, jti=claims["jti"], user_id=claims["sub"], expires_at=claims["exp"]
                )
            if not rotated:
                # A rotated token presented again was copied: whoever holds
                # its successors (the thief or the owner) loses them too.
                if family is not None:
                    await token_rows.revoke_family(
                        conn,
                        family=family,
                        user_id=claims["sub"],
                        expires_at=int(time.time()) + self.settings.refresh_token_ttl_s,
                    )
                raise AuthInvalid("Refresh token has already been used or revoked")
        return self._token_pair(
            row["id"], row["role"], generation=row["token_generation"], family=family
        )

    async def change_password(
        self, principal: Principal, current_password: str, new_password: str, address: str
    ) -> dict[str, Any]:
        """Replace the password (the current one is required, counted by the
        login throttle) and end every other session: the token generation
        moves on and the caller gets a fresh pair of the new generation."""
        claim = await self.throttle.claim(principal.username, address)
        await self.throttle.wait(claim)
        async with self.pool.acquire() as conn:
            row = await user_rows.user_by_id(conn, principal.user_id)
        stored = row["password_hash"] if row is not None else None
        if not await asyncio.to_thread(verify_password, current_password, stored):
            raise AuthInvalid("Current password is wrong")
        await self.throttle.succeeded(claim)
        fresh_hash = await asyncio.to_thread(hash_password, new_password)
        async with self.pool.acquire() as conn, conn.transaction():
            await user_rows.set_password(conn, principal.user_id, fresh_hash)
            generation = await token_rows.bump_generation(conn, principal.user_id)
        assert row is not None
        return self._token_pair(principal.user_id, row["role"], generation=generation)

    async def logout_all(self, principal: Principal) -> None:
        """Sign out everywhere: every token issued so far, this one included."""
        async with self.pool.acquire() as conn:
            await token_rows.bump_generation(conn, principal.user_id)

    async def logout(self, principal: Principal, refresh_token: str | None) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            if principal.token_jti and principal.token_expires_at:
                await token_rows.revoke_token(
                    conn,
                    jti=principal.token_jti,
                    user_id=principal.user_id,
                    expires_at=principal.token_expires_at,
                )
            if refresh_token:
                claims = decode_token(
                    refresh_token,
                    secret=self.settings.jwt_secret,
                    issuer=self.settings.jwt_issuer,
                    kind="refresh",
                )
                if claims["sub"] != principal.user_id:
                    raise AuthInvalid("Refresh token belongs to another user")
                await token_rows.revoke_token(
                    conn, jti=claims["jti"], user_id=claims["sub"], expires_at=claims["exp"]
                )


AUTH_SERVICE = web.AppKey("auth_service", AuthService)
