"""Revoked token ids (logout and refresh-token rotation)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg


async def revoke_token(
    conn: asyncpg.Connection, *, jti: str, user_id: str | None, expires_at: int
) -> bool:
    """Record a revocation; False when the token was already revoked."""
    status = await conn.execute(
        """
        INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES ($1, $2, $3)
        ON CONFLICT (jti) DO NOTHING
        """,
        jti,
        user_id,
        datetime.fromtimestamp(expires_at, UTC),
    )
    return status.endswith(" 1")


async def delete_expired_revocations(conn: asyncpg.Connection) -> int:
    status = await conn.execute("DELETE FROM revoked_tokens WHERE expires_at < now()")
    return int(status.split()[-1])
