"""How job rows look on the wire."""

from __future__ import annotations

from typing import Any

import asyncpg

V1 = "/api/v1"


def job_links(row: asyncpg.Record) -> dict[str, str]:
    job_id = row["id"]
    return {
        "status_url": f"{V1}/videos/{job_id}/status",
        "logs_url": f"{V1}/jobs/{job_id}/logs",
        "download_url": f"{V1}/videos/{job_id}/download",
        "stream_url": f"{V1}/videos/{job_id}/stream",
        "thumbnail_url": f"{V1}/videos/{job_id}/thumbnail",
    }


def job_view(row: asyncpg.Record) -> dict[str, Any]:
    started, finished = row["started_at"], row["completed_at"]
    duration = (finished - started).total_seconds() if started and finished else None
    return {
        "id": row["id"],
        "type": row["type"],
        "status": row["status"],
        "progress": row["progress"],
        "current_stage": row["current_stage"],
        "created_at": row["created_at"],
        "started_at": started,
        "completed_at": finished,
        "duration": round(duration, 3) if duration is not None else None,
        "render_seconds": row["render_seconds"],
        "parameters": row["parameters"],
        "storyboard": row["storyboard_summary"],
        "result": row["result"],
        "error": row["error"],
        "links": job_links(row),
    }
