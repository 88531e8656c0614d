"""/api/v1/files/*: upload, list, read, deliver, sign and delete files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, request_schema

from api.auth.authn import require_user
from api.cache.glue import CACHE, cached_json
from api.common_schemas import BEARER, INVALID, NOT_FOUND, UNAUTHORIZED, envelope, error_doc
from api.files import service as file_service
from api.files.captions import send_captions
from api.files.delivery import send_original, send_stream, send_thumbnail
from api.files.schemas import (
    UPLOAD_FIELDS,
    BatchUploadSchema,
    CleanupRequestSchema,
    DownloadQuerySchema,
    FileDetailSchema,
    FileListQuerySchema,
    FileListSchema,
    FileMetadataSchema,
    SecureQuerySchema,
    SignedUrlRequestSchema,
    SignedUrlSchema,
    StreamQuerySchema,
    ThumbnailQuerySchema,
    multipart_body,
)
from api.keys import DB_POOL, SETTINGS
from api.responses import ok
from db import files as file_rows
from db import users as user_rows
from pipeline.maintenance import cached_reads
from t2m import signing
from t2m.file_views import file_detail, file_metadata

routes = web.RouteTableDef()
TOO_LARGE = error_doc(
    "Upload larger than MAX_UPLOAD_BYTES, or more text fields than UPLOAD_MAX_FIELDS"
    " / UPLOAD_MAX_FIELDS_BYTES (PAYLOAD_TOO_LARGE), or over your stored-bytes"
    " or files quota (QUOTA_EXCEEDED; nothing is kept)"
)
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
CAPTIONS_VTT = {"description": "text/vtt; charset=utf-8 (CORS: any origin)"}
CAPTIONS_SRT = {"description": "application/x-subrip (CORS: any origin)"}
RANGE_ERROR = error_doc("Malformed or unsatisfiable Range (RANGE_NOT_SATISFIABLE)")


@routes.post("/files/upload")
@docs(
    tags=["files"],
    summary="Upload one file (streamed; typed by content)",
    security=BEARER,
    requestBody=multipart_body("file", many=False, extra=UPLOAD_FIELDS),
    responses={
        201: {"schema": envelope(FileDetailSchema, "UploadedFile"), "description": "Stored"},
        400: INVALID,
        401: UNAUTHORIZED,
        413: TOO_LARGE,
    },
)
async def upload(request: web.Request) -> web.Response:
    principal = await require_user(request)
    (row,) = await file_service.upload_files(request, principal, file_fields=("file",), max_files=1)
    return ok(file_detail(row), "File uploaded; processing is pending", status=201)


@routes.post("/files/batch-upload")
@docs(
    tags=["files"],
    summary="Upload several files in one request (field 'files', repeated)",
    security=BEARER,
    requestBody=multipart_body("files", many=True, extra=UPLOAD_FIELDS),
    responses={
        201: {"schema": envelope(BatchUploadSchema, "BatchUpload"), "description": "Stored"},
        400: INVALID,
        401: UNAUTHORIZED,
        413: TOO_LARGE,
    },
)
async def batch_upload(request: web.Request) -> web.Response:
    principal = await require_user(request)
    rows = await file_service.upload_files(
        request,
        principal,
        file_fields=("files", "file"),
        max_files=file_service.MAX_BATCH_FILES,
    )
    return ok(
        {"uploaded": [file_detail(r) for r in rows], "count": len(rows)},
        f"{len(rows)} files uploaded",
        status=201,
    )


@routes.get("/files")
@docs(
    tags=["files"],
    summary="List your files, newest first",
    security=BEARER,
    responses={
        200: {"schema": envelope(FileListSchema, "FileList"), "description": "A page"},
        400: INVALID,
        401: UNAUTHORIZED,
    },
)
@request_schema(FileListQuerySchema, location="querystring")
async def list_files(request: web.Request) -> web.Response:
    principal = await require_user(request)
    query = request["data"]
    listing = cached_reads.file_listing(
        request.config_dict[DB_POOL],
        cached_reads.Viewer(principal.user_id, principal.is_admin),
        file_type=query.get("file_type"),
        page=query["page"],
        items_per_page=query["items_per_page"],
    )
    return cached_json(await cached_reads.read(request.config_dict[CACHE], listing), envelope=True)


@routes.get("/files/stats")
@docs(
    tags=["files"],
    summary="Counts and bytes of your files by type, with deduplication savings",
    security=BEARER,
    responses={200: {"description": "Statistics"}, 401: UNAUTHORIZED},
)
async def stats(request: web.Request) -> web.Response:
    principal = await require_user(request)
    async with request.config_dict[DB_POOL].acquire() as conn:
        result = await file_rows.file_stats(conn, principal.user_id)
    return ok(result)


@routes.post("/files/cleanup")
@docs(
    tags=["files"],
    summary="Delete your files matching criteria (dry run by default)",
    security=BEARER,
    responses={
        200: {"description": "What matched and what was deleted"},
        400: INVALID,
        401: UNAUTHORIZED,
    },
)
@request_schema(CleanupRequestSchema)
async def cleanup(request: web.Request) -> web.Response:
    principal = await require_user(request)
    data = request["data"]
    days = data.get("older_than_days")
    result = await file_service.cleanup_files(
        request,
        principal,
        older_than=None if days is None else datetime.now(UTC) - timedelta(days=days),
        file_type=data.get("file_type"),
        dry_run=data["dry_run"],
    )
    return ok(result, "Dry run: nothing deleted" if result["dry_run"] else "Cleanup done")


@routes.get("/files/secure/{file_id}")
@docs(
    tags=["files"],
    summary="Access a file through a signed link (no token needed)",
    responses={
        200: BYTES,
        206: BYTES,
        403: error_doc("Signature invalid, altered or expired"),
        404: NOT_FOUND,
        416: RANGE_ERROR,
    },
)
@request_schema(SecureQuerySchema, location="querystring")
async def secure(request: web.Request) -> web.StreamResponse:
    # Every pair of the query, repeats included: a repeated parameter is refused.
    grant = signing.verify(
        request.config_dict[SETTINGS].signing_secret,
        request.match_info["file_id"],
        request.query.items(),
    )
    async with request.config_dict[DB_POOL].acquire() as conn:
        signer = await user_rows.user_by_id(conn, grant.user_id)
        row = None
        if signer is not None and signer["is_active"]:
            row = await file_rows.visible_file(
                conn, grant.file_id, viewer_id=signer["id"], is_admin=signer["role"] == "ADMIN"
            )
    if row is None:
        raise signing.SignatureInvalid("The signed link no longer grants access to a file")
    match grant.kind:
        case signing.LinkKind.THUMBNAIL:
            return await send_thumbnail(request, row, grant.params["size"])
        case signing.LinkKind.RENDITION:
            return await send_stream(
                request, row, quality=grant.params["quality"], user_id=grant.user_id
            )
        case signing.LinkKind.ORIGINAL:
            return await send_original(
                request, row, inline=grant.params["inline"] == "true", user_id=grant.user_id
            )
        case signing.LinkKind.CAPTIONS:
            return await send_captions(request, row, grant.params["format"])
        case signing.LinkKind.HLS:
            raise signing.SignatureInvalid(
                "An hls link opens /api/v1/files/secure/{file_id}/hls/master.m3u8"
            )


@routes.get("/files/{file_id}")
@docs(
    tags=["files"],
    summary="File details with metadata",
    security=BEARER,
    responses={
        200: {"schema": envelope(FileDetailSchema, "FileDetail"), "description": "The file"},
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
async def get_file(request: web.Request) -> web.Response:
    principal = await require_user(request)
    details = cached_reads.file_details(
        request.config_dict[DB_POOL],
        cached_reads.Viewer(principal.user_id, principal.is_admin),
        request.match_info["file_id"],
    )
    return cached_json(await cached_reads.read(request.config_dict[CACHE], details), envelope=True)


@routes.get("/files/{file_id}/metadata")
@docs(
    tags=["files"],
    summary="Technical metadata only",
    security=BEARER,
    responses={
        200: {"schema": envelope(FileMetadataSchema, "FileMetadata"), "description": "Metadata"},
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
async def get_metadata(request: web.Request) -> web.Response:
    principal = await require_user(request)
    row = await file_service.get_visible_file(request, principal, request.match_info["file_id"])
    return ok(file_metadata(row))


@routes.get("/files/{file_id}/download")
@docs(
    tags=["files"],
    summary="Download the file (Range, ETag and If-None-Match supported)",
    security=BEARER,
    responses={
        200: BYTES,
        206: BYTES,
        304: {"description": "Not modified"},
        401: UNAUTHORIZED,
        404: NOT_FOUND,
        416: RANGE_ERROR,
    },
)
@request_schema(DownloadQuerySchema, location="querystring")
async def download(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    row = await file_service.get_visible_file(request, principal, request.match_info["file_id"])
    return await send_original(
        request, row, inline=request["data"]["inline"], user_id=principal.user_id
    )


@routes.get("/files/{file_id}/stream")
@docs(
    tags=["files"],
    summary="Stream the file, choosing a rendition with quality",
    security=BEARER,
    responses={
        200: BYTES,
        206: BYTES,
        304: {"description": "Not modified"},
        400: INVALID,
        401: UNAUTHORIZED,
        404: NOT_FOUND,
        416: RANGE_ERROR,
    },
)
@request_schema(StreamQuerySchema, location="querystring")
async def stream(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    row = await file_service.get_visible_file(request, principal, request.match_info["file_id"])
    return await send_stream(
        request, row, quality=request["data"]["quality"], user_id=principal.user_id
    )


@routes.get("/files/{file_id}/thumbnail")
@docs(
    tags=["files"],
    summary="Thumbnail image (small, medium or large)",
    security=BEARER,
    responses={200: {"description": "JPEG image"}, 400: INVALID, 401: UNAUTHORIZED, 404: NOT_FOUND},
)
@request_schema(ThumbnailQuerySchema, location="querystring")
async def thumbnail(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    row = await file_service.get_visible_file(request, principal, request.match_info["file_id"])
    return await send_thumbnail(request, row, request["data"]["size"])


@routes.get("/files/{file_id}/captions.vtt")
@docs(
    tags=["files"],
    summary="A generated video's captions as WebVTT (word timestamps when narrated)",
    security=BEARER,
    responses={200: CAPTIONS_VTT, 401: UNAUTHORIZED, 404: NOT_FOUND},
)
async def captions_vtt(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    row = await file_service.get_visible_file(request, principal, request.match_info["file_id"])
    return await send_captions(request, row, "vtt")


@routes.get("/files/{file_id}/captions.srt")
@docs(
    tags=["files"],
    summary="A generated video's captions as SRT (sentence cues)",
    security=BEARER,
    responses={200: CAPTIONS_SRT, 401: UNAUTHORIZED, 404: NOT_FOUND},
)
async def captions_srt(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    row = await file_service.get_visible_file(request, principal, request.match_info["file_id"])
    return await send_captions(request, row, "srt")


@routes.get("/files/{file_id}/analytics")
@docs(
    tags=["files"],
    summary="Downloads, stream sessions, bytes served and last access",
    security=BEARER,
    responses={200: {"description": "Analytics"}, 401: UNAUTHORIZED, 404: NOT_FOUND},
)
async def analytics(request: web.Request) -> web.Response:
    principal = await require_user(request)
    row = await file_service.get_visible_file(request, principal, request.match_info["file_id"])
    async with request.config_dict[DB_POOL].acquire() as conn:
        sessions = await file_rows.file_analytics(conn, row["id"])
    return ok(
        {
            "file_id": row["id"],
            "downloads": row["download_count"],
            "streams": row["stream_count"],
            "bytes_served": row["bytes_served"],
            "last_accessed_at": row["last_accessed_at"],
            **sessions,
        }
    )


@routes.delete("/files/{file_id}")
@docs(
    tags=["files"],
    summary="Delete a file (bytes shared with other files are kept)",
    security=BEARER,
    responses={200: {"description": "Deleted"}, 401: UNAUTHORIZED, 404: NOT_FOUND},
)
async def delete(request: web.Request) -> web.Response:
    principal = await require_user(request)
    file_id = request.match_info["file_id"]
    await file_service.delete_file(request, principal, file_id)
    return ok({"id": file_id, "deleted": True}, "File deleted")


def link_grant(data: dict[str, Any]) -> tuple[signing.LinkKind, dict[str, str]]:
    """The kind of a requested link and the parameters it signs."""
    if "kind" in data:
        kind = signing.LinkKind(data["kind"])
    elif "size" in data:
        kind = signing.LinkKind.THUMBNAIL
    elif "quality" in data:
        kind = signing.LinkKind.RENDITION
    elif data.get("format") == "hls":
        kind = signing.LinkKind.HLS
    elif "format" in data:
        kind = signing.LinkKind.CAPTIONS
    else:
        kind = signing.LinkKind.ORIGINAL
    match kind:
        case signing.LinkKind.THUMBNAIL:
            return kind, {"size": data.get("size", "medium")}
        case signing.LinkKind.RENDITION:
            return kind, {"quality": data.get("quality", "auto")}
        case signing.LinkKind.ORIGINAL:
            return kind, {"inline": "true" if data["inline"] else "false"}
        case signing.LinkKind.CAPTIONS:
            return kind, {"format": data.get("format", "vtt")}
        case signing.LinkKind.HLS:
            return kind, {}


def _signed_path(kind: signing.LinkKind, file_id: str) -> str:
    if kind is signing.LinkKind.HLS:  # the master playlist; it leads to the rest
        return f"/api/v1/files/secure/{file_id}/hls/master.m3u8"
    return f"/api/v1/files/secure/{file_id}"


@routes.post("/files/{file_id}/signed-url")
@docs(
    tags=["files"],
    summary="A temporary link that needs no token",
    security=BEARER,
    responses={
        200: {"schema": envelope(SignedUrlSchema, "SignedUrl"), "description": "The link"},
        400: INVALID,
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
@request_schema(SignedUrlRequestSchema)
async def signed_url(request: web.Request) -> web.Response:
    principal = await require_user(request)
    row = await file_service.get_visible_file(request, principal, request.match_info["file_id"])
    data = request["data"]
    settings = request.config_dict[SETTINGS]
    kind, params = link_grant(data)
    query, expires = signing.signed_query(
        settings.signing_secret, row["id"], principal.user_id, kind, params, data["expires_in"]
    )
    return ok(
        {
            "url": f"{settings.public_base_url}{_signed_path(kind, row['id'])}?{query}",
            "expires_at": datetime.fromtimestamp(expires, UTC),
            "expires_in": data["expires_in"],
            "kind": kind.value,
        }
    )
