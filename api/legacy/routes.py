"""Root-path aliases of api-workflow-guide.md over the same services as /api/v1."""

from __future__ import annotations

from aiohttp import web
from aiohttp.web_request import FileField
from aiohttp_apigami import docs, request_schema

from api.auth.authn import require_admin, require_user
from api.auth.schemas import LoginSchema
from api.auth.service import AUTH_SERVICE
from api.cache.glue import CACHE, cached_json
from api.common_schemas import (
    ACCOUNT_PENDING,
    FORBIDDEN,
    INVALID,
    JOB_QUOTA,
    NOT_FOUND,
    RATE_LIMITED,
    STORAGE_QUOTA,
    UNAUTHORIZED,
)
from api.files import service as file_service
from api.files.delivery import send_original, send_stream
from api.files.schemas import UPLOAD_FIELDS, FileListQuerySchema, StreamQuerySchema, multipart_body
from api.jobs import service as job_service
from api.jobs.schemas import MAX_SCRIPT_CHARS, GeneratedSchema
from api.keys import DB_POOL, STORAGE
from api.legacy.schemas import ContentListSchema, ContentSchema, LegacyTokenSchema
from api.monitoring.health import liveness, report_for
from api.monitoring.system_schemas import HealthSchema, LivenessSchema
from api.recommendations.feedback import record_feedback
from api.recommendations.metrics import recommender_metrics
from api.recommendations.schemas import FeedbackSchema, RecommendationSchema, RecommendQuerySchema
from api.recommendations.scorer import SCORER_CACHE
from api.responses import plain
from pipeline.maintenance import cached_reads
from t2m.errors import NotFound, ValidationFailed
from t2m.file_views import content_view
from t2m.storage import SEGMENTS

routes = web.RouteTableDef()


@routes.get("/health")
@docs(
    tags=["workflow"],
    summary="Is the system running? (database, Redis, storage, workers)",
    description=(
        "Statuses and latencies for anyone; versions, worker hosts and pids and"
        " error texts only with an administrator's token."
    ),
    security=[{}, {"bearerAuth": []}],
    responses={
        200: {"schema": HealthSchema, "description": "Healthy or degraded"},
        503: {"schema": HealthSchema, "description": "A required component is down"},
    },
)
async def health(request: web.Request) -> web.Response:
    report, _ = await report_for(request)
    return plain(report, status=503 if report["status"] == "unhealthy" else 200)


@routes.get("/health/live")
@docs(
    tags=["workflow"],
    summary="Is this API process alive? (no dependency is checked)",
    responses={200: {"schema": LivenessSchema, "description": "Alive"}},
)
async def health_live(request: web.Request) -> web.Response:
    return plain(liveness())


@routes.post("/login")
@docs(
    tags=["workflow"],
    summary="Get a JWT for secure access (form fields username, password)",
    responses={
        200: {"schema": LegacyTokenSchema, "description": "Tokens"},
        400: INVALID,
        401: UNAUTHORIZED,
        403: ACCOUNT_PENDING,
        429: RATE_LIMITED,
    },
)
@request_schema(LoginSchema, location="form")
async def login(request: web.Request) -> web.Response:
    data = request["data"]
    result = await request.config_dict[AUTH_SERVICE].login(
        data["username"], data["password"], request.remote or "-"
    )
    result.pop("user", None)
    return plain(result)


BYTES = {
    "description": "The bytes (206 with Content-Range for a Range request). Always "
    "X-Content-Type-Options: nosniff; HTML, SVG, XML and JavaScript files are sent as "
    "attachments with Content-Security-Policy: sandbox, even where inline display is asked",
    "headers": {
        "X-Content-Type-Options": {"schema": {"type": "string", "enum": ["nosniff"]}},
        "Content-Security-Policy": {
            "description": "sandbox policy on HTML, SVG, XML and JavaScript files",
            "schema": {"type": "string"},
        },
    },
}


@routes.post("/upload")
@docs(
    tags=["workflow"],
    summary="Upload a file (images, videos, audio, PDFs, text)",
    requestBody=multipart_body("file", many=False, extra=UPLOAD_FIELDS),
    responses={
        201: {"schema": ContentSchema, "description": "Stored"},
        400: INVALID,
        401: UNAUTHORIZED,
        413: STORAGE_QUOTA,
    },
)
async def upload(request: web.Request) -> web.Response:
    principal = await require_user(request, allow_guest=True)
    (row,) = await file_service.upload_files(request, principal, file_fields=("file",), max_files=1)
    return plain({**content_view(row), "message": "Content uploaded"}, status=201)


@routes.get("/contents")
@docs(
    tags=["workflow"],
    summary="List uploaded and generated content",
    responses={
        200: {"schema": ContentListSchema, "description": "A page"},
        400: INVALID,
        401: UNAUTHORIZED,
    },
)
@request_schema(FileListQuerySchema, location="querystring")
async def contents(request: web.Request) -> web.Response:
    principal = await require_user(request, allow_guest=True)
    query = request["data"]
    listing = cached_reads.file_listing(
        request.config_dict[DB_POOL],
        cached_reads.Viewer(principal.user_id, principal.is_admin),
        file_type=query.get("file_type"),
        page=query["page"],
        items_per_page=query["items_per_page"],
        kind="contents",
    )
    return cached_json(await cached_reads.read(request.config_dict[CACHE], listing), envelope=False)


@routes.get("/content/{content_id}")
@docs(
    tags=["workflow"],
    summary="Content details and metadata",
    responses={
        200: {"schema": ContentSchema, "description": "The content"},
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
async def content(request: web.Request) -> web.Response:
    principal = await require_user(request, allow_guest=True)
    details = cached_reads.file_details(
        request.config_dict[DB_POOL],
        cached_reads.Viewer(principal.user_id, principal.is_admin),
        request.match_info["content_id"],
        kind="content",
    )
    return cached_json(await cached_reads.read(request.config_dict[CACHE], details), envelope=False)


@routes.get("/download/{content_id}")
@docs(
    tags=["workflow"],
    summary="Download content",
    responses={200: BYTES, 206: BYTES, 401: UNAUTHORIZED, 404: NOT_FOUND},
)
async def download(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request, allow_guest=True)
    row = await file_service.get_visible_file(request, principal, request.match_info["content_id"])
    return await send_original(request, row, inline=False, user_id=principal.user_id)


@routes.get("/stream/{content_id}")
@docs(
    tags=["workflow"],
    summary="Stream content with range requests",
    responses={200: BYTES, 206: BYTES, 401: UNAUTHORIZED, 404: NOT_FOUND},
)
@request_schema(StreamQuerySchema, location="querystring")
async def stream(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request, allow_guest=True)
    row = await file_service.get_visible_file(request, principal, request.match_info["content_id"])
    return await send_stream(
        request, row, quality=request["data"]["quality"], user_id=principal.user_id
    )


@routes.get("/bucket/stats")
@docs(
    tags=["workflow"],
    summary="Storage backend, its configuration and usage per segment (admin)",
    security=[{"bearerAuth": []}],
    responses={200: {"description": "Storage statistics"}, 401: UNAUTHORIZED, 403: FORBIDDEN},
)
async def bucket_stats(request: web.Request) -> web.Response:
    await require_admin(request)
    storage = request.config_dict[STORAGE]
    usage = await storage.usage_by_segment()
    return plain(
        {
            **storage.describe(),
            "segments": usage,
            "total_objects": sum(u["objects"] for u in usage.values()),
            "total_bytes": sum(u["bytes"] for u in usage.values()),
        }
    )


@routes.get("/bucket/list/{segment}")
@docs(
    tags=["workflow"],
    summary="List objects in a storage segment (admin; at most 1000)",
    security=[{"bearerAuth": []}],
    responses={200: {"description": "Objects"}, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND},
)
async def bucket_list(request: web.Request) -> web.Response:
    await require_admin(request)
    segment = request.match_info["segment"]
    if segment not in SEGMENTS:
        raise NotFound("No such segment", f"Segments: {', '.join(SEGMENTS)}")
    objects: list[dict[str, object]] = []
    truncated = False
    async for info in request.config_dict[STORAGE].list(f"{segment}/"):
        if len(objects) == 1000:
            truncated = True
            break
        objects.append({"key": info.key, "size": info.size, "modified": info.modified})
    return plain(
        {"segment": segment, "objects": objects, "count": len(objects), "truncated": truncated}
    )


@routes.post("/generate-video")
@docs(
    tags=["workflow"],
    summary="Create a video from a text script (multipart: file = a .txt script, title)",
    requestBody={
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "title": {"type": "string"},
                        "quality": {"type": "string", "enum": ["480p", "720p", "1080p"]},
                    },
                    "required": ["file"],
                }
            }
        },
    },
    responses={
        202: {"schema": GeneratedSchema, "description": "Queued"},
        400: INVALID,
        401: UNAUTHORIZED,
        429: JOB_QUOTA,
    },
)
async def generate_video(request: web.Request) -> web.Response:
    principal = await require_user(request, allow_guest=True)
    if request.content_type != "multipart/form-data":
        raise ValidationFailed("Send a multipart/form-data body", {"file": ["Missing script file"]})
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, FileField):
        raise ValidationFailed(
            "Request validation failed", {"file": ["Attach the script as 'file'"]}
        )
    raw = upload.file.read(MAX_SCRIPT_CHARS * 4 + 1)
    try:
        script = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            "Request validation failed", {"file": ["The script must be UTF-8 text"]}
        ) from exc
    if not script.strip() or len(script) > MAX_SCRIPT_CHARS or "\x00" in script:
        raise ValidationFailed(
            "Request validation failed",
            {"file": [f"A non-empty text script of at most {MAX_SCRIPT_CHARS} characters"]},
        )
    quality = str(form.get("quality") or "720p")
    if quality not in ("480p", "720p", "1080p"):
        raise ValidationFailed("Request validation failed", {"quality": ["480p, 720p or 1080p"]})
    title = str(form.get("title") or "")[:300] or None
    params: dict[str, object] = {
        "script": script,
        "title": title,
        "quality": quality,
        "aspect": "16:9",
        "assets": [],
        "style": {},
        "subtitles": "none",
        "tags": [],
    }
    row, _ = await job_service.submit_video_job(request, principal, params, idempotency_key=None)
    content_id = row["output_file_id"]
    return plain(
        {
            "job_id": row["id"],
            "status": row["status"],
            "content_id": content_id,
            "status_url": f"/api/v1/videos/{row['id']}/status",
            "download_url": f"/download/{content_id}",
            "stream_url": f"/stream/{content_id}",
            "message": "Video generation started; the URLs work once the job completes",
        },
        status=202,
    )


@routes.get("/reports/storyboard-stats")
@docs(
    tags=["workflow"],
    summary="Video generation statistics: storyboards, methods, success and failure rates",
    responses={200: {"description": "Statistics"}},
)
async def storyboard_stats(request: web.Request) -> web.Response:
    stats = cached_reads.storyboard_stats(request.config_dict[DB_POOL])
    return cached_json(await cached_reads.read(request.config_dict[CACHE], stats), envelope=False)


@routes.post("/feedback")
@docs(
    tags=["workflow"],
    summary="Submit viewer feedback (like/view/share/...) — trains the tag recommender",
    responses={202: {"description": "Recorded"}, 400: INVALID, 401: UNAUTHORIZED, 404: NOT_FOUND},
)
@request_schema(FeedbackSchema)
async def feedback(request: web.Request) -> web.Response:
    principal = await require_user(request, allow_guest=True)
    data = request["data"]
    event_id = await record_feedback(request, principal, data, viewer_ref=data.get("user_id"))
    return plain(
        {"status": "recorded", "event_id": event_id, "message": "Feedback will train the agent"},
        status=202,
    )


@routes.get("/recommend-tags/{content_id}")
@docs(
    tags=["workflow"],
    summary="AI tag suggestions for a content item (improve with feedback)",
    responses={
        200: {"schema": RecommendationSchema, "description": "Tags"},
        400: INVALID,
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
@request_schema(RecommendQuerySchema, location="querystring")
async def recommend_tags(request: web.Request) -> web.Response:
    principal = await require_user(request, allow_guest=True)
    row = await file_service.get_visible_file(request, principal, request.match_info["content_id"])
    result = await request.config_dict[SCORER_CACHE].recommend(
        row, user_id=principal.user_id, k=request["data"]["k"]
    )
    return plain(result)


@routes.get("/metrics")
@docs(
    tags=["workflow"],
    summary="Recommender learning and system figures",
    responses={200: {"description": "Metrics"}},
)
async def metrics(request: web.Request) -> web.Response:
    async with request.config_dict[DB_POOL].acquire() as conn:
        return plain(await recommender_metrics(conn))
