"""A sign-in with a hash made at an older cost stores one at today's cost."""

from __future__ import annotations

from db.users import insert_user
from t2m.passwords import needs_rehash, verify_password
from tests.t2m.test_passwords import old_cost_hash


async def _stored_hash(db, user_id: str) -> str:
    async with db.acquire() as conn:
        value: str = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id)
    return value


async def test_login_rehashes_an_old_hash(client, db):
    old = old_cost_hash("an old password")
    async with db.acquire() as conn:
        row = await insert_user(
            conn,
            username="oldtimer",
            email="oldtimer@example.test",
            password_hash=old,
            role="USER",
            email_verified=True,
        )

    wrong = await client.post(
        "/api/v1/auth/login", json={"username": "oldtimer", "password": "not it"}
    )
    assert wrong.status == 401
    assert await _stored_hash(db, row["id"]) == old, "a failed sign-in changes nothing"

    response = await client.post(
        "/api/v1/auth/login", json={"username": "oldtimer", "password": "an old password"}
    )
    assert response.status == 200, await response.text()
    fresh = await _stored_hash(db, row["id"])
    assert fresh != old and not needs_rehash(fresh)
    assert verify_password("an old password", fresh)

    again = await client.post(
        "/api/v1/auth/login", json={"username": "oldtimer", "password": "an old password"}
    )
    assert again.status == 200
    assert await _stored_hash(db, row["id"]) == fresh, "a current hash is left alone"
