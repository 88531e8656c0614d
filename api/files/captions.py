"""Serve a rendered video's caption files (WebVTT with word timestamps, SRT).

The render stores them next to the video, under the job that made it
(``videos/{job_id}/subtitles.{vtt,srt}``); the file row remembers that job,
so the same files are reached from the job (``/videos/{job_id}/captions.vtt``),
from the file (``/files/{file_id}/captions.vtt``) and through a signed link
(kind ``captions``), always after the caller's access to the video was
checked.

Players fetch a ``<track>`` from another origin with CORS (``crossorigin``
on the video element), so these responses allow any origin: they are
authorised by a bearer token or a signed link, never by cookies, so allowing
the origin grants nothing a page could not already ask for.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from api.keys import STORAGE
from api.serving import serve_object
from t2m.errors import NotFound
from t2m.filenames import content_disposition

CAPTION_FORMATS = ("vtt", "srt")
CONTENT_TYPES = {"vtt": "text/vtt; charset=utf-8", "srt": "application/x-subrip"}
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, ETag",
}


def captions_key(job_id: str, fmt: str) -> str:
    return f"videos/{job_id}/subtitles.{fmt}"


def caption_urls(job_id: str) -> dict[str, str]:
    """What a job's ``result`` lists when its video has captions."""
    return {fmt: f"/api/v1/videos/{job_id}/captions.{fmt}" for fmt in CAPTION_FORMATS}


async def send_captions(request: web.Request, row: asyncpg.Record, fmt: str) -> web.StreamResponse:
    """``row`` is a file the caller may see; 404 unless it is a rendered
    video with captions."""
    if fmt not in CAPTION_FORMATS:
        raise NotFound("No captions", f"Caption formats: {', '.join(CAPTION_FORMATS)}")
    job_id = row["job_id"]
    if row["file_type"] != "video" or not job_id:
        raise NotFound("No captions", "Only generated videos have captions")
    storage = request.config_dict[STORAGE]
    key = captions_key(job_id, fmt)
    info = await storage.stat(key)
    if info is None:
        raise NotFound(
            "No captions",
            "This video has no captions: narrated videos always do, silent ones with"
            " subtitles=sidecar",
        )
    return await serve_object(
        request,
        storage,
        key,
        size=info.size,
        etag=f'"{info.etag or row["blob_sha256"] + "-captions-" + fmt}"',
        last_modified=info.modified.astimezone(UTC) if info.modified else datetime.now(UTC),
        content_type=CONTENT_TYPES[fmt],
        content_disposition=content_disposition(f"{row['id']}.{fmt}", inline=True),
        extra_headers=CORS_HEADERS,
    )
