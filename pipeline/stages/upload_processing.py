"""Process an upload: probe its metadata and make its thumbnails (no I/O beyond local files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.stages.probe import MediaLimits, ProbeError, probe_media
from pipeline.stages.thumbnails import ThumbnailError, make_thumbnails


@dataclass
class UploadProcessingResult:
    status: str  # "completed" or "failed"
    metadata: dict[str, Any] = field(default_factory=dict)
    thumbnails: dict[str, Path] = field(default_factory=dict)
    error: str | None = None


def process_local_upload(
    path: Path,
    *,
    file_type: str,
    mime: str,
    work_dir: Path,
    limits: MediaLimits | None = None,
) -> UploadProcessingResult:
    """Metadata and thumbnails of a local copy of an upload.

    A file that cannot be parsed is ``failed`` with the reason (it stays
    downloadable); a parsable file without a picture (plain text, audio
    without cover art) simply has no thumbnails.
    """
    try:
        # Thumbnails decode the file: only after the probe accepted its size.
        metadata = probe_media(path, file_type, mime, limits=limits)
    except ProbeError as exc:
        return UploadProcessingResult("failed", error=f"Could not read the file: {exc.reason}")
    try:
        thumbnails = make_thumbnails(path, file_type, work_dir)
    except ThumbnailError:
        thumbnails = {}
    return UploadProcessingResult("completed", metadata, thumbnails)
