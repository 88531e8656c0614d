"""The shared query helpers, on a real PostgreSQL."""

from __future__ import annotations

import asyncpg

from db.sql import changed_one_row, fetch_page


async def test_a_page_and_the_count_of_every_match(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        await conn.execute(
            "CREATE TEMP TABLE paged (id int PRIMARY KEY, kind text NOT NULL, label text)"
        )
        try:
            await conn.executemany(
                "INSERT INTO paged VALUES ($1, $2, $3)",
                [(i, "even" if i % 2 == 0 else "odd", f"item {i}") for i in range(1, 12)],
            )
            page = {
                "select": "SELECT id, label FROM paged",
                "count_from": "FROM paged",
                "where": "($1::text IS NULL OR kind = $1) AND id >= $2",
                "order_by": "id DESC",
            }
            rows, total = await fetch_page(conn, **page, args=("odd", 3), limit=2, offset=1)
            # odd ids from 3: 11, 9, 7, 5, 3 -> the second and third, newest first
            assert [(r["id"], r["label"]) for r in rows] == [(9, "item 9"), (7, "item 7")]
            assert total == 5
            rows, total = await fetch_page(conn, **page, args=(None, 1), limit=20, offset=0)
            assert [r["id"] for r in rows] == list(range(11, 0, -1))
            assert total == 11
            rows, total = await fetch_page(conn, **page, args=("odd", 3), limit=5, offset=10)
            assert (rows, total) == ([], 5)
        finally:
            await conn.execute("DROP TABLE paged")


async def test_changed_one_row_tells_whether_exactly_one_row_changed(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        await conn.execute("CREATE TEMP TABLE flags (id int PRIMARY KEY, kind text NOT NULL)")
        try:
            await conn.executemany(
                "INSERT INTO flags VALUES ($1, $2)", [(1, "a"), (2, "b"), (3, "b")]
            )
            update = "UPDATE flags SET kind = 'c' WHERE kind = $1"
            assert await changed_one_row(conn, update, "a") is True
            assert await changed_one_row(conn, update, "a") is False  # none left
            assert await changed_one_row(conn, update, "b") is False  # two rows
            insert = "INSERT INTO flags VALUES ($1, 'd') ON CONFLICT (id) DO NOTHING"
            assert await changed_one_row(conn, insert, 4) is True
            assert await changed_one_row(conn, insert, 4) is False
            assert await changed_one_row(conn, "DELETE FROM flags WHERE id = $1", 4) is True
        finally:
            await conn.execute("DROP TABLE flags")
