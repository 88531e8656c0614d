"""Queries on users."""

from __future__ import annotations

from typing import Any

import asyncpg

from db.sql import changed_one_row, fetch_page
from t2m.ids import new_id

_COLUMNS = (
    "id, username, email, full_name, image_url, password_hash, role, email_verified,"
    " external_subject, is_active, created_at, updated_at, last_sign_in_at, pending_approval,"
    " token_generation"
)


async def insert_user(
    conn: asyncpg.Connection,
    *,
    username: str,
    email: str,
    password_hash: str | None,
    role: str = "USER",
    email_verified: bool = False,
    full_name: str | None = None,
    external_subject: str | None = None,
    pending_approval: bool = False,
) -> asyncpg.Record:
    """Insert a user; ``pending_approval`` makes it inactive until an admin approves."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO users (id, username, email, password_hash, role, email_verified,
                           full_name, external_subject, pending_approval, is_active)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NOT $9)
        RETURNING {_COLUMNS}
        """,
        new_id("usr"),
        username,
        email,
        password_hash,
        role,
        email_verified,
        full_name,
        external_subject,
        pending_approval,
    )
    assert row is not None
    return row


async def user_by_id(conn: asyncpg.Connection, user_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)


async def user_for_token(
    conn: asyncpg.Connection, user_id: str, jti: str, family: str | None = None
) -> asyncpg.Record | None:
    """The token's user with a ``revoked`` flag (the token itself or its
    refresh family): one round trip per request."""
    return await conn.fetchrow(
        f"SELECT {_COLUMNS},"
        " (EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $2)"
        "  OR EXISTS (SELECT 1 FROM revoked_token_families WHERE family = $3)) AS revoked"
        " FROM users WHERE id = $1",
        user_id,
        jti,
        family,
    )


async def user_by_login(conn: asyncpg.Connection, login: str) -> asyncpg.Record | None:
    """Find a user by username or e-mail, case-insensitively."""
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM users"
        " WHERE lower(username) = lower($1) OR lower(email) = lower($1)",
        login,
    )


async def user_by_external_subject(conn: asyncpg.Connection, subject: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE external_subject = $1", subject)


async def upsert_external_user(
    conn: asyncpg.Connection,
    *,
    subject: str,
    username: str,
    email: str,
    email_verified: bool,
    full_name: str | None,
    image_url: str | None,
) -> asyncpg.Record:
    """Provision (or refresh) a user signed in through the external provider."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO users (id, username, email, password_hash, role, email_verified,
                           full_name, image_url, external_subject, last_sign_in_at)
        VALUES ($1, $2, $3, NULL, 'USER', $4, $5, $6, $7, now())
        ON CONFLICT (external_subject) DO UPDATE
            SET email_verified = EXCLUDED.email_verified,
                full_name = COALESCE(EXCLUDED.full_name, users.full_name),
                image_url = COALESCE(EXCLUDED.image_url, users.image_url),
                last_sign_in_at = now(),
                updated_at = now()
        RETURNING {_COLUMNS}
        """,
        new_id("usr"),
        username,
        email,
        email_verified,
        full_name,
        image_url,
        subject,
    )
    assert row is not None
    return row


async def username_or_email_taken(
    conn: asyncpg.Connection, username: str, email: str
) -> dict[str, bool]:
    row = await conn.fetchrow(
        """
        SELECT bool_or(lower(username) = lower($1)) AS username,
               bool_or(lower(email) = lower($2)) AS email
        FROM users WHERE lower(username) = lower($1) OR lower(email) = lower($2)
        """,
        username,
        email,
    )
    return {"username": bool(row and row["username"]), "email": bool(row and row["email"])}


async def touch_sign_in(conn: asyncpg.Connection, user_id: str) -> None:
    await conn.execute("UPDATE users SET last_sign_in_at = now() WHERE id = $1", user_id)


async def set_password(conn: asyncpg.Connection, user_id: str, password_hash: str) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1",
        user_id,
        password_hash,
    )


async def replace_password_hash(
    conn: asyncpg.Connection, user_id: str, old_hash: str, new_hash: str
) -> bool:
    """Swap a hash for a stronger one unless the password changed meanwhile."""
    return await changed_one_row(
        conn,
        "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
        user_id,
        old_hash,
        new_hash,
    )


async def set_email_verified(conn: asyncpg.Connection, user_id: str, verified: bool) -> None:
    await conn.execute(
        "UPDATE users SET email_verified = $2, updated_at = now() WHERE id = $1",
        user_id,
        verified,
    )


async def count_users(conn: asyncpg.Connection) -> int:
    value: Any = await conn.fetchval("SELECT count(*) FROM users")
    return int(value)


async def approve_user(conn: asyncpg.Connection, user_id: str) -> asyncpg.Record | None:
    """Activate an account waiting for approval; None when it is not waiting."""
    return await conn.fetchrow(
        f"UPDATE users SET pending_approval = false, is_active = true, updated_at = now()"
        f" WHERE id = $1 AND pending_approval RETURNING {_COLUMNS}",
        user_id,
    )


async def list_users(
    conn: asyncpg.Connection, *, pending: bool | None, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    """Users, newest first; ``pending`` filters on waiting for approval."""
    return await fetch_page(
        conn,
        select=f"SELECT {_COLUMNS} FROM users",
        count_from="FROM users",
        where="($1::boolean IS NULL OR pending_approval = $1)",
        args=(pending,),
        order_by="created_at DESC, id DESC",
        limit=limit,
        offset=offset,
    )


async def ensure_guest(
    conn: asyncpg.Connection, *, username: str, email: str, address: str
) -> asyncpg.Record:
    """The guest user of one anonymous client, created on first use; its last
    use is recorded (at most hourly, to spare a write per request) so stale
    guests can be reaped."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM users WHERE lower(username) = lower($1)"
        " AND last_sign_in_at > now() - interval '1 hour'",
        username,
    )
    if row is not None:
        return row
    row = await conn.fetchrow(
        f"""
        INSERT INTO users (id, username, email, password_hash, role, guest_address,
                           last_sign_in_at)
        VALUES ($1, $2, $3, NULL, 'USER', $4, now())
        ON CONFLICT ((lower(username))) DO UPDATE SET last_sign_in_at = now()
        RETURNING {_COLUMNS}
        """,
        new_id("usr"),
        username,
        email,
        address,
    )
    assert row is not None
    return row


async def stale_guests(conn: asyncpg.Connection, *, max_age_s: float, limit: int) -> list[str]:
    """Guest users (made by guest mode, never a registered account) unused for
    ``max_age_s`` with no unfinished job."""
    rows = await conn.fetch(
        """
        SELECT u.id FROM users u
        WHERE u.guest_address IS NOT NULL AND u.password_hash IS NULL
          AND u.external_subject IS NULL AND u.username LIKE 'guest-%'
          AND u.last_sign_in_at < now() - make_interval(secs => $1)
          AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.owner_id = u.id
                          AND j.status IN ('queued', 'processing'))
        ORDER BY u.last_sign_in_at LIMIT $2
        """,
        max_age_s,
        limit,
    )
    return [r["id"] for r in rows]


async def delete_empty_guest(conn: asyncpg.Connection, user_id: str) -> bool:
    """Delete a guest user that owns no file or job row any more (the purge
    removes their bytes first); never a registered account."""
    return await changed_one_row(
        conn,
        """
        DELETE FROM users u
        WHERE u.id = $1 AND u.guest_address IS NOT NULL AND u.password_hash IS NULL
          AND NOT EXISTS (SELECT 1 FROM files f WHERE f.owner_id = u.id)
          AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.owner_id = u.id)
        """,
        user_id,
    )
