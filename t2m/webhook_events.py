"""Webhook event names and the shape of their payloads, shared by API and workers.

A body is built once, when the event happens, and stored: every attempt and
every redelivery sends (and signs) exactly the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

JOB_STARTED = "job.started"
JOB_PROGRESS = "job.progress"
JOB_COMPLETED = "job.completed"
JOB_FAILED = "job.failed"
JOB_CANCELLED = "job.cancelled"
FILE_PROCESSED = "file.processed"
FILE_FAILED = "file.failed"
PING = "ping"

JOB_EVENTS: tuple[str, ...] = (JOB_STARTED, JOB_PROGRESS, JOB_COMPLETED, JOB_FAILED, JOB_CANCELLED)
FILE_EVENTS: tuple[str, ...] = (FILE_PROCESSED, FILE_FAILED)
# What a subscription may ask for; ``ping`` is only ever sent by the test endpoint.
SUBSCRIBABLE_EVENTS: tuple[str, ...] = JOB_EVENTS + FILE_EVENTS

# job.progress is announced at each 10 % step (10 … 90); 100 % is job.completed.
PROGRESS_STEP = 10


def progress_step(progress: int) -> int:
    """The 10 % step a progress value has reached (0 below 10 %, at most 90)."""
    return min(90, (max(0, progress) // PROGRESS_STEP) * PROGRESS_STEP)


def timestamp(now: datetime | None = None) -> str:
    """RFC 3339 in UTC with a ``Z``, as in the spec's example payload."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_event_data(job: Mapping[str, Any], public_base_url: str) -> dict[str, Any]:
    """``data`` of a job.* event, from the job row as it is once the event happened."""
    base = public_base_url.rstrip("/")
    data: dict[str, Any] = {
        "job_id": job["id"],
        "type": job["type"],
        "status": job["status"],
        "progress": job["progress"],
        "stage": job["current_stage"],
    }
    if job["status"] == "completed":
        result = job["result"] or {}
        job_path = f"{base}/api/v1/videos/{job['id']}"
        # Absolute: the receiver is another system, with no notion of our base URL.
        data["result"] = {
            "file_id": result.get("file_id", job["output_file_id"]),
            "file_size": result.get("file_size"),
            "duration": result.get("duration"),
            "download_url": f"{job_path}/download",
            "stream_url": f"{job_path}/stream",
            "thumbnail_url": f"{job_path}/thumbnail",
        }
    if job["status"] == "failed":
        data["error"] = job["error"]
    return data


def file_event_data(row: Mapping[str, Any], public_base_url: str) -> dict[str, Any]:
    """``data`` of a file.* event (an upload's metadata and thumbnails are ready, or not)."""
    base = public_base_url.rstrip("/")
    file_path = f"{base}/api/v1/files/{row['id']}"
    data: dict[str, Any] = {
        "file_id": row["id"],
        "filename": row["filename"],
        "file_type": row["file_type"],
        "status": row["processing_status"],
        "download_url": f"{file_path}/download",
    }
    if row["processing_status"] == "completed":
        data["metadata"] = row["metadata"] or {}
        data["thumbnail_url"] = f"{file_path}/thumbnail" if row["thumbnails"] else None
    else:
        data["error"] = row["processing_error"]
    return data


def event_body(
    *,
    event_id: str,
    event: str,
    data: Mapping[str, Any],
    sequence: int | None = None,
    now: datetime | None = None,
) -> str:
    """The exact JSON text a delivery sends.

    ASCII-only (``ensure_ascii``) so a receiver that decodes the body with any
    ASCII-compatible charset and re-encodes it as UTF-8 — as the spec's
    verification snippet does — gets the signed bytes back unchanged.
    """
    payload: dict[str, Any] = {"id": event_id, "event": event, "timestamp": timestamp(now)}
    if sequence is not None:
        payload["sequence"] = sequence
    payload["data"] = data
    return json.dumps(payload, separators=(",", ":"), default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
