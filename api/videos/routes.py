"""/api/v1/videos/*: generate a video from a script and fetch the result by job id."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web
from aiohttp_apigami import docs, request_schema

from api.auth.authn import Principal, require_user
from api.common_schemas import (
    BEARER,
    INVALID,
    JOB_QUOTA,
    NOT_FOUND,
    UNAUTHORIZED,
    envelope,
    error_doc,
)
from api.files.captions import send_captions
from api.files.delivery import send_original, send_stream, send_thumbnail
from api.files.schemas import DownloadQuerySchema, StreamQuerySchema, ThumbnailQuerySchema
from api.jobs import service as job_service
from api.jobs.schemas import GenerateVideoSchema, JobSchema, SubmittedJobSchema
from api.jobs.views import job_view
from api.keys import DB_POOL
from api.responses import ok
from db import files as file_rows
from db import webhooks as webhook_rows
from t2m.errors import Conflict
from t2m.job_status import JobStatus

routes = web.RouteTableDef()
NOT_READY = error_doc("The video is not ready (CONFLICT; see the job status)")
BYTES = {"description": "The video (206 with Content-Range for a Range request)"}
CAPTIONS_VTT = {"description": "text/vtt; charset=utf-8 (CORS: any origin)"}
CAPTIONS_SRT = {"description": "application/x-subrip (CORS: any origin)"}


@routes.post("/videos/generate")
@docs(
    tags=["videos"],
    summary="Start a video generation job from a script",
    security=BEARER,
    parameters=[
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": False,
            "schema": {"type": "string", "maxLength": 200},
            "description": "Retrying with the same key returns the same job",
        }
    ],
    responses={
        202: {"schema": envelope(SubmittedJobSchema, "SubmittedJob"), "description": "Queued"},
        200: {
            "schema": envelope(SubmittedJobSchema, "ExistingJob"),
            "description": "Key seen before",
        },
        400: INVALID,
        401: UNAUTHORIZED,
        422: error_doc(
            "The script's image/video scenes would need more render memory than"
            " RENDER_MEMORY_BUDGET_MB (VALIDATION_ERROR)"
        ),
        429: JOB_QUOTA,
    },
)
@request_schema(GenerateVideoSchema)
async def generate(request: web.Request) -> web.Response:
    principal = await require_user(request)
    row, created = await job_service.submit_video_job(
        request,
        principal,
        dict(request["data"]),
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    view = {**job_view(row), "job_id": row["id"]}
    if row["webhook_url"]:
        # The one-off subscription's secret, in this response only (a retry
        # with the same Idempotency-Key is this response again).
        async with request.config_dict[DB_POOL].acquire() as conn:
            hook = await webhook_rows.job_webhook(conn, row["id"])
        if hook is not None:
            view["webhook"] = {
                "id": hook["id"],
                "url": hook["url"],
                "events": list(hook["events"]),
                "secret": hook["secret"],
            }
    if created:
        return ok(view, "Video generation started", status=202)
    return ok(view, "Existing job for this Idempotency-Key")


async def finished_video(request: web.Request, principal: Principal) -> asyncpg.Record:
    job = await job_service.get_visible_job(request, principal, request.match_info["job_id"])
    if job["status"] != JobStatus.COMPLETED:
        raise Conflict("The video is not ready", f"Job {job['id']} is {job['status']}")
    async with request.config_dict[DB_POOL].acquire() as conn:
        row = await file_rows.visible_file(
            conn, job["output_file_id"], viewer_id=principal.user_id, is_admin=principal.is_admin
        )
    if row is None:
        raise Conflict("The video is no longer available", "Its file was deleted")
    return row


@routes.get("/videos/{job_id}/status")
@docs(
    tags=["videos"],
    summary="Job status and progress",
    security=BEARER,
    responses={
        200: {"schema": envelope(JobSchema, "VideoStatus"), "description": "Status"},
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
async def status(request: web.Request) -> web.Response:
    principal = await require_user(request)
    row = await job_service.get_visible_job(request, principal, request.match_info["job_id"])
    return ok(job_view(row))


@routes.get("/videos/{job_id}/download")
@docs(
    tags=["videos"],
    summary="Download the generated video",
    security=BEARER,
    responses={200: BYTES, 206: BYTES, 401: UNAUTHORIZED, 404: NOT_FOUND, 409: NOT_READY},
)
@request_schema(DownloadQuerySchema, location="querystring")
async def download(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    row = await finished_video(request, principal)
    return await send_original(
        request, row, inline=request["data"]["inline"], user_id=principal.user_id
    )


@routes.get("/videos/{job_id}/stream")
@docs(
    tags=["videos"],
    summary="Stream the generated video (quality: auto, 480p, 720p, 1080p)",
    security=BEARER,
    responses={
        200: BYTES,
        206: BYTES,
        400: INVALID,
        401: UNAUTHORIZED,
        404: NOT_FOUND,
        409: NOT_READY,
    },
)
@request_schema(StreamQuerySchema, location="querystring")
async def stream(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    row = await finished_video(request, principal)
    return await send_stream(
        request, row, quality=request["data"]["quality"], user_id=principal.user_id
    )


@routes.get("/videos/{job_id}/captions.vtt")
@docs(
    tags=["videos"],
    summary="Captions as WebVTT: sentence cues with word timestamps when narrated",
    security=BEARER,
    responses={200: CAPTIONS_VTT, 401: UNAUTHORIZED, 404: NOT_FOUND, 409: NOT_READY},
)
async def captions_vtt(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    return await send_captions(request, await finished_video(request, principal), "vtt")


@routes.get("/videos/{job_id}/captions.srt")
@docs(
    tags=["videos"],
    summary="Captions as SRT (sentence cues)",
    security=BEARER,
    responses={200: CAPTIONS_SRT, 401: UNAUTHORIZED, 404: NOT_FOUND, 409: NOT_READY},
)
async def captions_srt(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    return await send_captions(request, await finished_video(request, principal), "srt")


@routes.get("/videos/{job_id}/thumbnail")
@docs(
    tags=["videos"],
    summary="Poster image of the generated video",
    security=BEARER,
    responses={
        200: {"description": "JPEG"},
        400: INVALID,
        401: UNAUTHORIZED,
        404: NOT_FOUND,
        409: NOT_READY,
    },
)
@request_schema(ThumbnailQuerySchema, location="querystring")
async def thumbnail(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    row = await finished_video(request, principal)
    return await send_thumbnail(request, row, request["data"]["size"])


@routes.get("/videos/{job_id}/metadata")
@docs(
    tags=["videos"],
    summary="Video, audio and generation facts of the generated video",
    security=BEARER,
    responses={200: {"description": "Metadata"}, 401: UNAUTHORIZED, 404: NOT_FOUND, 409: NOT_READY},
)
async def metadata(request: web.Request) -> web.Response:
    principal = await require_user(request)
    job = await job_service.get_visible_job(request, principal, request.match_info["job_id"])
    row = await finished_video(request, principal)
    return ok(video_metadata(job, row))


def video_metadata(job: asyncpg.Record, row: asyncpg.Record) -> dict[str, Any]:
    facts: dict[str, Any] = row["metadata"] or {}
    audio = facts.get("audio") or None
    params = job["parameters"] or {}
    return {
        "job_id": job["id"],
        "video": {
            "duration": facts.get("duration"),
            "width": facts.get("width"),
            "height": facts.get("height"),
            "fps": facts.get("fps"),
            "bitrate": facts.get("bitrate"),
            "codec": facts.get("codec"),
            "format": "mp4",
            "file_size": row["size"],
        },
        "audio": None
        if audio is None
        else {
            "codec": audio.get("codec"),
            "bitrate": audio.get("bitrate"),
            "sample_rate": audio.get("sample_rate"),
            "channels": audio.get("channels"),
        },
        "generation": {
            "prompt": params.get("title"),
            "model": (job["storyboard_summary"] or {}).get("method", "text_cards"),
            "quality": params.get("quality"),
            "aspect": params.get("aspect"),
            "created_at": job["created_at"],
        },
    }
