"""Small SQL-building helpers shared by the query modules.

Table and column names come from code, never from requests; values always
travel as parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg


def insert_sql(table: str, fields: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """``INSERT INTO table (a, b) VALUES ($1, $2)`` and its arguments.

    Column names are the keyword arguments of the callers.
    """
    names = list(fields)
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders})", list(
        fields.values()
    )


async def fetch_page(
    conn: asyncpg.Connection,
    *,
    select: str,
    count_from: str,
    where: str,
    args: Sequence[Any],
    order_by: str,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    """One page of ``select … WHERE where ORDER BY order_by`` and how many match in all.

    ``where`` refers to ``args`` as ``$1…$n``; the page's LIMIT and OFFSET take
    the next two placeholders.  ``count_from`` is the ``FROM`` clause the count
    needs (without the joins that only add columns).
    """
    total: int = await conn.fetchval(f"SELECT count(*) {count_from} WHERE {where}", *args)
    n = len(args)
    rows = await conn.fetch(
        f"{select} WHERE {where} ORDER BY {order_by} LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        limit,
        offset,
    )
    return list(rows), int(total)


async def changed_one_row(conn: asyncpg.Connection, sql: str, *args: Any) -> bool:
    """Run a single-row ``UPDATE``/``DELETE``/``INSERT`` and tell whether it
    changed exactly one row (False when its conditions matched none)."""
    status: str = await conn.execute(sql, *args)
    return status.endswith(" 1")
