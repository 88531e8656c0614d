"""Queries on blobs (content-addressed bytes) and files (per-upload records)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from db.sql import fetch_page, insert_sql

FILE_COLUMNS = (
    "f.id, f.owner_id, f.blob_sha256, f.filename, f.title, f.description, f.content_type,"
    " f.file_type, f.subdirectory, f.size, f.source, f.processing_status, f.processing_error,"
    " f.metadata, f.thumbnails, f.renditions, f.tags, f.download_count, f.stream_count,"
    " f.bytes_served, f.last_accessed_at, f.created_at, f.updated_at, f.job_id, b.storage_key"
)
_FROM = "FROM files f JOIN blobs b ON b.sha256 = f.blob_sha256"


async def lock_blob(conn: asyncpg.Connection, sha256: str) -> None:
    """Serialise, until the transaction ends, everything that stores, references
    or purges the bytes ``sha256``: an upload finding the object already stored
    must not have it deleted by the purge before its reference is counted."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('blob:' || $1, 0))", sha256)


async def add_blob_reference(
    conn: asyncpg.Connection, *, sha256: str, storage_key: str, size: int, mime: str
) -> bool:
    """Count one more reference to a blob, creating it; True when it is new."""
    created: bool = await conn.fetchval(
        """
        INSERT INTO blobs (sha256, storage_key, size, mime, ref_count)
        VALUES ($1, $2, $3, $4, 1)
        ON CONFLICT (sha256) DO UPDATE
            SET ref_count = blobs.ref_count + 1, unreferenced_since = NULL
        RETURNING (xmax = 0)
        """,
        sha256,
        storage_key,
        size,
        mime,
    )
    return created


async def insert_file(conn: asyncpg.Connection, **fields: Any) -> asyncpg.Record:
    sql, args = insert_sql("files", fields)
    file_id = await conn.fetchval(f"{sql} RETURNING id", *args)
    row = await file_by_id(conn, file_id)
    assert row is not None
    return row


async def file_by_id(conn: asyncpg.Connection, file_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {FILE_COLUMNS} {_FROM} WHERE f.id = $1 AND f.deleted_at IS NULL", file_id
    )


async def visible_file(
    conn: asyncpg.Connection, file_id: str, *, viewer_id: str, is_admin: bool
) -> asyncpg.Record | None:
    """The file if the viewer may see it (owner, or any admin)."""
    return await conn.fetchrow(
        f"SELECT {FILE_COLUMNS} {_FROM}"
        " WHERE f.id = $1 AND f.deleted_at IS NULL AND ($3 OR f.owner_id = $2)",
        file_id,
        viewer_id,
        is_admin,
    )


async def list_files(
    conn: asyncpg.Connection,
    *,
    owner_id: str | None,
    file_type: str | None,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    """A page of files, newest first; ``owner_id=None`` lists everyone's (admins)."""
    return await fetch_page(
        conn,
        select=f"SELECT {FILE_COLUMNS} {_FROM}",
        count_from="FROM files f",
        where="f.deleted_at IS NULL AND ($1::text IS NULL OR f.owner_id = $1)"
        " AND ($2::text IS NULL OR f.file_type = $2)",
        args=(owner_id, file_type),
        order_by="f.created_at DESC, f.id DESC",
        limit=limit,
        offset=offset,
    )


async def soft_delete_file(conn: asyncpg.Connection, file_id: str) -> bool:
    """Hide a file and release its blob reference (in the caller's transaction)."""
    sha = await conn.fetchval(
        "UPDATE files SET deleted_at = now(), updated_at = now()"
        " WHERE id = $1 AND deleted_at IS NULL RETURNING blob_sha256",
        file_id,
    )
    if sha is None:
        return False
    await conn.execute(
        """
        UPDATE blobs SET ref_count = ref_count - 1,
            unreferenced_since = CASE WHEN ref_count = 1 THEN now() END
        WHERE sha256 = $1
        """,
        sha,
    )
    return True


async def files_matching_cleanup(
    conn: asyncpg.Connection,
    *,
    owner_id: str | None,
    older_than: datetime | None,
    file_type: str | None,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT f.id, f.filename, f.file_type, f.size, f.created_at FROM files f"
        " WHERE f.deleted_at IS NULL AND ($1::text IS NULL OR f.owner_id = $1)"
        " AND ($2::timestamptz IS NULL OR f.created_at < $2)"
        " AND ($3::text IS NULL OR f.file_type = $3)"
        " ORDER BY f.created_at",
        owner_id,
        older_than,
        file_type,
    )


async def file_stats(conn: asyncpg.Connection, owner_id: str | None) -> dict[str, Any]:
    rows = await conn.fetch(
        """
        SELECT f.file_type, count(*) AS files, coalesce(sum(f.size), 0) AS bytes,
               coalesce(sum(f.download_count), 0) AS downloads,
               coalesce(sum(f.stream_count), 0) AS streams
        FROM files f
        WHERE f.deleted_at IS NULL AND ($1::text IS NULL OR f.owner_id = $1)
        GROUP BY f.file_type
        """,
        owner_id,
    )
    stored: int = await conn.fetchval(
        """
        SELECT coalesce(sum(b.size), 0) FROM blobs b
        WHERE b.sha256 IN (SELECT f.blob_sha256 FROM files f
                           WHERE f.deleted_at IS NULL AND ($1::text IS NULL OR f.owner_id = $1))
        """,
        owner_id,
    )
    by_type = {
        r["file_type"]: {
            "files": r["files"],
            "bytes": int(r["bytes"]),
            "downloads": int(r["downloads"]),
            "streams": int(r["streams"]),
        }
        for r in rows
    }
    total_bytes = sum(t["bytes"] for t in by_type.values())
    return {
        "total_files": sum(t["files"] for t in by_type.values()),
        "total_bytes": total_bytes,
        "stored_bytes": int(stored),
        "deduplicated_bytes": total_bytes - int(stored),
        "by_type": by_type,
    }


async def record_deliveries(
    conn: asyncpg.Connection, totals: list[tuple[str, int, int, int]]
) -> None:
    """Add ``(file_id, downloads, streams, bytes_sent)`` to each file's counters,
    in the order given (callers sort by id: one lock order for every writer)."""
    await conn.executemany(
        "UPDATE files SET download_count = download_count + $2,"
        " stream_count = stream_count + $3, bytes_served = bytes_served + $4,"
        " last_accessed_at = now() WHERE id = $1",
        totals,
    )


async def insert_stream_sessions(
    conn: asyncpg.Connection,
    sessions: list[tuple[str, str | None, str, int, int, int, float, bool]],
) -> None:
    """Rows of ``(file_id, user_id, quality, range_start, range_end, bytes_sent,
    duration_ms, completed)``."""
    await conn.executemany(
        """
        INSERT INTO stream_sessions (file_id, user_id, quality, range_start, range_end,
                                     bytes_sent, duration_ms, completed)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        """,
        sessions,
    )


async def file_analytics(conn: asyncpg.Connection, file_id: str) -> dict[str, Any]:
    row = await conn.fetchrow(
        """
        SELECT count(*) AS sessions, coalesce(sum(bytes_sent), 0) AS bytes,
               coalesce(avg(duration_ms), 0) AS mean_duration_ms,
               coalesce(avg(bytes_sent / greatest(duration_ms, 1) * 1000), 0) AS mean_bps,
               count(*) FILTER (WHERE completed) AS completed
        FROM stream_sessions WHERE file_id = $1
        """,
        file_id,
    )
    assert row is not None
    return {
        "stream_sessions": row["sessions"],
        "stream_bytes": int(row["bytes"]),
        "completed_sessions": row["completed"],
        "mean_session_ms": round(float(row["mean_duration_ms"]), 2),
        "mean_throughput_bps": round(float(row["mean_bps"]), 1),
    }


async def claim_for_processing(conn: asyncpg.Connection, file_id: str) -> asyncpg.Record | None:
    """Mark an upload as being processed; None when it is gone."""
    await conn.execute(
        "UPDATE files SET processing_status = 'processing', updated_at = now()"
        " WHERE id = $1 AND deleted_at IS NULL AND processing_status <> 'completed'",
        file_id,
    )
    return await file_by_id(conn, file_id)


async def finish_processing(
    conn: asyncpg.Connection,
    file_id: str,
    *,
    status: str,
    metadata: dict[str, Any],
    thumbnails: dict[str, str],
    error: str | None,
) -> None:
    await conn.execute(
        """
        UPDATE files SET processing_status = $2, metadata = $3, thumbnails = $4,
            processing_error = $5, updated_at = now()
        WHERE id = $1
        """,
        file_id,
        status,
        metadata,
        thumbnails,
        error,
    )


async def set_metadata_key(
    conn: asyncpg.Connection, file_id: str, key: str, value: Any
) -> str | None:
    """Set one metadata key of a live file; returns its owner (None: the file is gone)."""
    owner: str | None = await conn.fetchval(
        """
        UPDATE files
        SET metadata = coalesce(metadata, '{}'::jsonb) || jsonb_build_object($2::text, $3::jsonb),
            updated_at = now()
        WHERE id = $1 AND deleted_at IS NULL RETURNING owner_id
        """,
        file_id,
        key,
        value,
    )
    return owner


async def referenced_keys(conn: asyncpg.Connection, prefix: str) -> set[str]:
    """Storage keys under ``prefix`` that a blob still in use points at."""
    rows = await conn.fetch(
        "SELECT storage_key FROM blobs WHERE storage_key LIKE $1 AND ref_count > 0",
        prefix.replace("%", r"\%").replace("_", r"\_") + "%",
    )
    return {r["storage_key"] for r in rows}


async def set_renditions(
    conn: asyncpg.Connection, file_id: str, renditions: dict[str, Any]
) -> None:
    """Record an upload's encoded renditions (merged over what is there)."""
    await conn.execute(
        "UPDATE files SET renditions = renditions || $2::jsonb WHERE id = $1",
        file_id,
        renditions,
    )


async def live_file_ids(conn: asyncpg.Connection, owner_id: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT id FROM files WHERE owner_id = $1 AND deleted_at IS NULL", owner_id
    )
    return [r["id"] for r in rows]
