"""First-run data: the administrator account."""

from __future__ import annotations

import asyncpg

from db import users as user_rows
from t2m.passwords import generate_password, hash_password


async def ensure_admin(conn: asyncpg.Connection, *, username: str, email: str) -> str | None:
    """Create the admin user if missing; return its generated password, once."""
    if await user_rows.user_by_login(conn, username) is not None:
        return None
    password = generate_password()
    try:
        await user_rows.insert_user(
            conn,
            username=username,
            email=email,
            password_hash=hash_password(password),
            role="ADMIN",
            email_verified=True,
        )
    except asyncpg.UniqueViolationError:
        return None  # another process created it first
    return password
