"""HLS playback and seek previews: /api/v1/files/{id}/hls/…, /api/v1/videos/{job_id}/hls/…,
the storyboard track and sprite, and the signed tree under /api/v1/files/secure/{id}/hls/…"""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs

from api.auth.authn import require_user
from api.common_schemas import BEARER, NOT_FOUND, UNAUTHORIZED, error_doc
from api.files import service as file_service
from api.files.hls import check_path, is_rewritten, send_hls_file
from api.keys import DB_POOL, SETTINGS
from api.videos.routes import finished_video
from db import files as file_rows
from db import users as user_rows
from t2m import signing
from t2m.errors import NotFound

routes = web.RouteTableDef()
# A path inside the tree: master.m3u8, {quality}/index.m3u8, {quality}/init.mp4,
# {quality}/seg_NNNNN.m4s, subs/index.m3u8, subs/subtitles.vtt, storyboard.vtt/.jpg.
TREE = r"{path:[A-Za-z0-9_./-]+}"
HLS_OK = {
    "description": "A playlist (application/vnd.apple.mpegurl; Cache-Control max-age=5), an"
    " fMP4 init or media segment (video/mp4, video/iso.segment; immutable; 206 for a Range),"
    " the captions (text/vtt) or a seek preview. CORS: any origin"
}
HLS_PARTIAL = {"description": "A byte range of a segment"}
PATH_DOC = {
    "in": "path",
    "name": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "master.m3u8 and the names the playlists lead to",
}
NOT_READY = error_doc("The video is not ready (CONFLICT; see the job status)")
SIGNED_FORBIDDEN = error_doc(
    "Signature invalid, altered, expired, of another kind or for another file"
    " (SIGNATURE_INVALID / SIGNATURE_EXPIRED)"
)
STORYBOARD_VTT = {
    "description": "WebVTT thumbnails track: each cue is storyboard.jpg#xywh=x,y,w,h. CORS: any"
}
STORYBOARD_JPG = {"description": "The sprite sheet (image/jpeg). CORS: any origin"}


async def _owned_video(request: web.Request) -> str:
    principal = await require_user(request)
    row = await file_service.get_visible_file(request, principal, request.match_info["file_id"])
    if row["file_type"] != "video":
        raise NotFound("Not packaged", "Only videos have HLS and seek previews")
    file_id: str = row["id"]
    return file_id


@routes.get("/files/{file_id}/hls/" + TREE)
@docs(
    tags=["streaming"],
    summary="HLS master playlist (master.m3u8), variant playlists and segments of a video",
    security=BEARER,
    parameters=[PATH_DOC],
    responses={200: HLS_OK, 206: HLS_PARTIAL, 401: UNAUTHORIZED, 404: NOT_FOUND},
)
async def file_hls(request: web.Request) -> web.StreamResponse:
    file_id = await _owned_video(request)
    return await send_hls_file(request, file_id, request.match_info["path"], signed_query=None)


@routes.get("/videos/{job_id}/hls/" + TREE)
@docs(
    tags=["streaming"],
    summary="HLS of a generated video, by job (the same tree as its file's)",
    security=BEARER,
    parameters=[PATH_DOC],
    responses={
        200: HLS_OK,
        206: HLS_PARTIAL,
        401: UNAUTHORIZED,
        404: NOT_FOUND,
        409: NOT_READY,
    },
)
async def video_hls(request: web.Request) -> web.StreamResponse:
    principal = await require_user(request)
    row = await finished_video(request, principal)
    return await send_hls_file(request, row["id"], request.match_info["path"], signed_query=None)


@routes.get("/files/{file_id}/storyboard.vtt")
@docs(
    tags=["streaming"],
    summary="Seek previews: a WebVTT thumbnails track over storyboard.jpg",
    security=BEARER,
    responses={200: STORYBOARD_VTT, 401: UNAUTHORIZED, 404: NOT_FOUND},
)
async def storyboard_vtt(request: web.Request) -> web.StreamResponse:
    file_id = await _owned_video(request)
    return await send_hls_file(request, file_id, "storyboard.vtt", signed_query=None)


@routes.get("/files/{file_id}/storyboard.jpg")
@docs(
    tags=["streaming"],
    summary="Seek previews: the sprite sheet of frames every few seconds",
    security=BEARER,
    responses={
        200: STORYBOARD_JPG,
        304: {"description": "Not modified"},
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
async def storyboard_jpg(request: web.Request) -> web.StreamResponse:
    file_id = await _owned_video(request)
    return await send_hls_file(request, file_id, "storyboard.jpg", signed_query=None)


@routes.get("/files/secure/{file_id}/hls/" + TREE)
@docs(
    tags=["streaming"],
    summary="Signed HLS (kind hls): the master URL from signed-url plays without a token",
    parameters=[PATH_DOC],
    responses={200: HLS_OK, 206: HLS_PARTIAL, 403: SIGNED_FORBIDDEN, 404: NOT_FOUND},
)
async def signed_hls(request: web.Request) -> web.StreamResponse:
    file_id = request.match_info["file_id"]
    # Every pair of the query, repeats included: a repeated parameter is refused.
    grant = signing.verify(
        request.config_dict[SETTINGS].signing_secret, file_id, request.query.items()
    )
    if grant.kind is not signing.LinkKind.HLS:
        raise signing.SignatureInvalid("This link does not grant HLS playback")
    path = check_path(request.match_info["path"])
    if is_rewritten(path):
        # Playlists are where access is re-checked: a deleted file or a
        # disabled signer gets no new playlist, at once.
        async with request.config_dict[DB_POOL].acquire() as conn:
            signer = await user_rows.user_by_id(conn, grant.user_id)
            row = None
            if signer is not None and signer["is_active"]:
                row = await file_rows.visible_file(
                    conn, file_id, viewer_id=signer["id"], is_admin=signer["role"] == "ADMIN"
                )
        if row is None:
            raise signing.SignatureInvalid("The signed link no longer grants access to a file")
    return await send_hls_file(request, file_id, path, signed_query=request.query_string)
