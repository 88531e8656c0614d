"""Queries behind the cache, deduplication and optimize endpoints."""

from __future__ import annotations

from typing import Any

import asyncpg

# The tables every hot read and report scans; ANALYZE keeps their plans right
# after bulk changes (a big upload batch, a purge) instead of waiting for
# autovacuum's thresholds.
HOT_TABLES = (
    "files",
    "blobs",
    "jobs",
    "stream_sessions",
    "feedback_events",
    "job_logs",
    "webhook_deliveries",
    "maintenance_runs",
)


async def analyze_tables(conn: asyncpg.Connection, tables: tuple[str, ...] = HOT_TABLES) -> None:
    # Names come from the constant above, never from a request.
    await conn.execute("ANALYZE " + ", ".join(tables))


async def dedup_stats(conn: asyncpg.Connection) -> dict[str, Any]:
    """Logical bytes (what the live file records add up to) against stored
    bytes (each distinct content once)."""
    row = await conn.fetchrow(
        """
        WITH live AS (SELECT blob_sha256, size FROM files WHERE deleted_at IS NULL),
             used AS (SELECT blob_sha256, count(*) AS refs FROM live GROUP BY blob_sha256)
        SELECT (SELECT count(*) FROM live) AS files,
               (SELECT coalesce(sum(size), 0) FROM live) AS logical_bytes,
               (SELECT count(*) FROM used) AS blobs,
               (SELECT coalesce(sum(b.size), 0) FROM blobs b JOIN used u
                    ON u.blob_sha256 = b.sha256) AS stored_bytes,
               (SELECT count(*) FROM used WHERE refs > 1) AS shared_blobs,
               (SELECT coalesce(sum(refs - 1), 0) FROM used WHERE refs > 1) AS duplicate_files,
               (SELECT count(*) FROM blobs WHERE ref_count = 0) AS unreferenced_blobs,
               (SELECT coalesce(sum(size), 0) FROM blobs WHERE ref_count = 0)
                    AS unreferenced_bytes
        """
    )
    assert row is not None
    logical, stored = int(row["logical_bytes"]), int(row["stored_bytes"])
    return {
        "files": row["files"],
        "distinct_blobs": row["blobs"],
        "shared_blobs": row["shared_blobs"],
        "duplicate_files": int(row["duplicate_files"]),
        "logical_bytes": logical,
        "stored_bytes": stored,
        "saved_bytes": logical - stored,
        "dedup_ratio": round(logical / stored, 4) if stored else None,
        "unreferenced_blobs": row["unreferenced_blobs"],
        "unreferenced_bytes": int(row["unreferenced_bytes"]),
    }


async def own_dedup_stats(conn: asyncpg.Connection, owner_id: str) -> dict[str, Any]:
    """Savings among one owner's live files: identical bytes they hold twice.
    Nothing of other owners is read, so nothing of theirs can show."""
    row = await conn.fetchrow(
        """
        WITH live AS (SELECT blob_sha256, size FROM files
                      WHERE owner_id = $1 AND deleted_at IS NULL),
             distinct_sizes AS (SELECT blob_sha256, max(size) AS size FROM live
                                GROUP BY blob_sha256)
        SELECT (SELECT count(*) FROM live) AS files,
               (SELECT coalesce(sum(size), 0) FROM live) AS logical_bytes,
               (SELECT coalesce(sum(size), 0) FROM distinct_sizes) AS stored_bytes
        """,
        owner_id,
    )
    assert row is not None
    logical, stored = int(row["logical_bytes"]), int(row["stored_bytes"])
    return {
        "files": int(row["files"]),
        "logical_bytes": logical,
        "stored_bytes": stored,
        "saved_bytes": logical - stored,
        "dedup_ratio": round(logical / stored, 4) if stored else None,
    }


async def top_shared_blobs(conn: asyncpg.Connection, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        SELECT b.sha256, b.size, b.mime, count(*) AS files
        FROM files f JOIN blobs b ON b.sha256 = f.blob_sha256
        WHERE f.deleted_at IS NULL
        GROUP BY b.sha256, b.size, b.mime HAVING count(*) > 1
        ORDER BY (count(*) - 1) * b.size DESC LIMIT $1
        """,
        limit,
    )
    return [
        {
            "sha256": r["sha256"],
            "size": r["size"],
            "mime": r["mime"],
            "files": r["files"],
            "saved_bytes": (r["files"] - 1) * r["size"],
        }
        for r in rows
    ]


async def recently_active_owners(conn: asyncpg.Connection, limit: int) -> list[str]:
    """Non-admin users whose files or jobs changed most recently (to warm)."""
    rows = await conn.fetch(
        """
        SELECT a.owner_id FROM (
            SELECT owner_id, max(updated_at) AS at FROM files
            WHERE deleted_at IS NULL GROUP BY owner_id
            UNION ALL
            SELECT owner_id, max(updated_at) FROM jobs
            WHERE deleted_at IS NULL GROUP BY owner_id
        ) a JOIN users u ON u.id = a.owner_id
        WHERE u.role <> 'ADMIN' AND u.is_active
        GROUP BY a.owner_id ORDER BY max(a.at) DESC LIMIT $1
        """,
        limit,
    )
    return [r["owner_id"] for r in rows]


async def owners_of_jobs(conn: asyncpg.Connection, job_ids: list[str]) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT owner_id FROM jobs WHERE id = ANY($1::text[])", job_ids
    )
    return [r["owner_id"] for r in rows]
