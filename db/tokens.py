"""Revoked token ids (logout, refresh-token rotation), revoked refresh-token
families (reuse of a rotated token) and per-user token generations."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from db.sql import changed_one_row


async def revoke_token(
    conn: asyncpg.Connection, *, jti: str, user_id: str | None, expires_at: int
) -> bool:
    """Record a revocation; False when the token was already revoked."""
    return await changed_one_row(
        conn,
        """
        INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES ($1, $2, $3)
        ON CONFLICT (jti) DO NOTHING
        """,
        jti,
        user_id,
        datetime.fromtimestamp(expires_at, UTC),
    )


async def revoke_family(
    conn: asyncpg.Connection, *, family: str, user_id: str | None, expires_at: int
) -> None:
    """Revoke every token of a refresh family; ``expires_at`` is the latest
    expiry any of its tokens can have (the row is kept until then)."""
    await conn.execute(
        """
        INSERT INTO revoked_token_families (family, user_id, expires_at) VALUES ($1, $2, $3)
        ON CONFLICT (family) DO UPDATE
            SET expires_at = GREATEST(revoked_token_families.expires_at, EXCLUDED.expires_at)
        """,
        family,
        user_id,
        datetime.fromtimestamp(expires_at, UTC),
    )


async def family_revoked(conn: asyncpg.Connection, family: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM revoked_token_families WHERE family = $1)", family
        )
    )


async def bump_generation(conn: asyncpg.Connection, user_id: str) -> int:
    """End every token issued to the user so far; returns the new generation."""
    generation = await conn.fetchval(
        "UPDATE users SET token_generation = token_generation + 1, updated_at = now()"
        " WHERE id = $1 RETURNING token_generation",
        user_id,
    )
    return int(generation or 0)


async def delete_expired_revocations(conn: asyncpg.Connection) -> int:
    status = await conn.execute("DELETE FROM revoked_tokens WHERE expires_at < now()")
    families = await conn.execute("DELETE FROM revoked_token_families WHERE expires_at < now()")
    return int(status.split()[-1]) + int(families.split()[-1])
