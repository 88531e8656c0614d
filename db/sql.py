"""Small SQL-building helper shared by the query modules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def insert_sql(table: str, fields: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """``INSERT INTO table (a, b) VALUES ($1, $2)`` and its arguments.

    Column names come from code (keyword arguments of the callers), never from
    requests; values always travel as parameters.
    """
    names = list(fields)
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders})", list(
        fields.values()
    )
