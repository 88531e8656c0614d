"""Record a finished HLS package where the API lists it.

Kept apart from the actor (no broker import) so that tests record a package
exactly as the worker does.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from db import files as file_rows
from db import jobs as job_rows
from t2m.hls_links import HLS_KEY, video_hls_links


async def record_package(
    conn: asyncpg.Connection, row: asyncpg.Record, facts: dict[str, Any]
) -> str | None:
    """Store ``facts`` in the file's metadata (its detail lists the URLs from
    them) and the URLs in its job's result, in one transaction; the file's
    owner, or None when the file has been deleted meanwhile."""
    async with conn.transaction():
        owner = await file_rows.set_metadata_key(conn, row["id"], HLS_KEY, facts)
        if owner is not None and row["job_id"]:
            await job_rows.merge_result(conn, row["job_id"], video_hls_links(row["job_id"], facts))
    return owner
