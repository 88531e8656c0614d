"""How file rows look on the wire, on both API surfaces."""

from __future__ import annotations

from typing import Any

import asyncpg

from t2m.hls_links import file_hls_links

V1 = "/api/v1/files"


def file_links(file_id: str) -> dict[str, str]:
    return {
        "download_url": f"{V1}/{file_id}/download",
        "stream_url": f"{V1}/{file_id}/stream",
        "thumbnail_url": f"{V1}/{file_id}/thumbnail",
        "metadata_url": f"{V1}/{file_id}/metadata",
    }


def file_summary(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "filename": row["filename"],
        "title": row["title"],
        "size": row["size"],
        "content_type": row["content_type"],
        "file_type": row["file_type"],
        "processing_status": row["processing_status"],
        "has_thumbnail": bool(row["thumbnails"]),
        "created_at": row["created_at"],
    }


def file_detail(row: asyncpg.Record) -> dict[str, Any]:
    return {
        **file_summary(row),
        "description": row["description"],
        "subdirectory": row["subdirectory"],
        "source": row["source"],
        "tags": list(row["tags"]),
        "checksum": f"sha256:{row['blob_sha256']}",
        "processing_error": row["processing_error"],
        "updated_at": row["updated_at"],
        "download_count": row["download_count"],
        "stream_count": row["stream_count"],
        "metadata": row["metadata"],
        "renditions": sorted(row["renditions"]),
        "thumbnails": sorted(row["thumbnails"]),
        **file_links(row["id"]),
        # Listed once the package worker has written the tree (videos only).
        **file_hls_links(row["id"], row["metadata"]),
    }


def file_metadata(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "content_type": row["content_type"],
        "size": row["size"],
        "checksum": f"sha256:{row['blob_sha256']}",
        "processing_status": row["processing_status"],
        "processing_error": row["processing_error"],
        "metadata": row["metadata"],
    }


def content_view(row: asyncpg.Record) -> dict[str, Any]:
    """The root-path (workflow guide) shape of a content item."""
    return {
        "content_id": row["id"],
        "title": row["title"] or row["filename"],
        "description": row["description"],
        "filename": row["filename"],
        "content_type": row["content_type"],
        "file_type": row["file_type"],
        "size": row["size"],
        "tags": list(row["tags"]),
        "processing_status": row["processing_status"],
        "metadata": row["metadata"],
        "created_at": row["created_at"],
        "download_url": f"/download/{row['id']}",
        "stream_url": f"/stream/{row['id']}",
        "thumbnail_url": f"{V1}/{row['id']}/thumbnail" if row["thumbnails"] else None,
        # The same HLS and seek-preview URLs as the file detail (null until packaged).
        **file_hls_links(row["id"], row["metadata"]),
    }
