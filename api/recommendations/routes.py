"""/api/v1/feedback and /api/v1/files/{id}/recommended-tags."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, request_schema

from api.auth.authn import require_admin, require_user
from api.common_schemas import BEARER, FORBIDDEN, INVALID, NOT_FOUND, UNAUTHORIZED, envelope
from api.files import service as file_service
from api.keys import DB_POOL
from api.recommendations.feedback import record_feedback
from api.recommendations.schemas import (
    FeedbackRecordedSchema,
    FeedbackSchema,
    GlobalVocabularySchema,
    PromotionCandidatesSchema,
    PromotionQuerySchema,
    RecommendationSchema,
    RecommendQuerySchema,
    VocabularyChangeSchema,
    VocabularyTagsSchema,
)
from api.recommendations.scorer import SCORER_CACHE
from api.responses import ok
from db import recommender as rec_rows
from recommender.features import normalize_tag
from t2m.errors import NotFound, ValidationFailed

routes = web.RouteTableDef()


@routes.post("/feedback")
@docs(
    tags=["recommender"],
    summary="Record viewer feedback on a content item (trains the tag recommender)",
    security=BEARER,
    responses={
        202: {"schema": envelope(FeedbackRecordedSchema, "Feedback"), "description": "Recorded"},
        400: INVALID,
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
@request_schema(FeedbackSchema)
async def feedback(request: web.Request) -> web.Response:
    principal = await require_user(request)
    event_id = await record_feedback(request, principal, request["data"], viewer_ref=None)
    return ok({"event_id": event_id, "status": "recorded"}, "Feedback recorded", status=202)


@routes.get("/files/{file_id}/recommended-tags")
@docs(
    tags=["recommender"],
    summary="Up to k suggested tags with scores, a recommendation id and the model version",
    security=BEARER,
    responses={
        200: {"schema": envelope(RecommendationSchema, "Recommendation"), "description": "Tags"},
        400: INVALID,
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
@request_schema(RecommendQuerySchema, location="querystring")
async def recommended_tags(request: web.Request) -> web.Response:
    principal = await require_user(request)
    row = await file_service.get_visible_file(request, principal, request.match_info["file_id"])
    result = await request.config_dict[SCORER_CACHE].recommend(
        row, user_id=principal.user_id, k=request["data"]["k"]
    )
    return ok(result)


# --- the global vocabulary (administrators) ------------------------------------------------

ADMIN_ERRORS = {401: UNAUTHORIZED, 403: FORBIDDEN}
VOCABULARY = envelope(GlobalVocabularySchema, "GlobalVocabulary")
CHANGE = envelope(VocabularyChangeSchema, "VocabularyChange")


def _names(raw: list[str]) -> list[str]:
    names = list(dict.fromkeys(n for n in map(normalize_tag, raw) if n))
    if not names:
        raise ValidationFailed("Request validation failed", {"tags": ["No usable tag names"]})
    return names


@routes.get("/recommender/vocabulary")
@docs(
    tags=["recommender"],
    summary="The global tag vocabulary (administrators): suggested to every user",
    security=BEARER,
    responses={
        200: {
            "schema": envelope(GlobalVocabularySchema, "GlobalVocabulary"),
            "description": "Tags",
        },
        **ADMIN_ERRORS,
    },
)
async def global_vocabulary(request: web.Request) -> web.Response:
    await require_admin(request)
    async with request.config_dict[DB_POOL].acquire() as conn:
        rows = await rec_rows.global_vocabulary(conn)
    tags = [dict(r) | {"created_at": r["created_at"].isoformat()} for r in rows]
    return ok({"tags": tags, "total": len(tags)})


async def _add(request: web.Request, *, source: str) -> web.Response:
    admin = await require_admin(request)
    names = _names(request["data"]["tags"])
    async with request.config_dict[DB_POOL].acquire() as conn:
        added = await rec_rows.curate_tags(conn, names, source=source, admin_id=admin.user_id)
    request.config_dict[SCORER_CACHE].forget_global()
    present = [n for n in names if n not in set(added)]
    return ok({"added": added, "already_present": present}, status=201 if added else 200)


@routes.post("/recommender/vocabulary")
@docs(
    tags=["recommender"],
    summary="Add curated tags to the global vocabulary (administrators)",
    security=BEARER,
    responses={
        200: {
            "schema": envelope(VocabularyChangeSchema, "VocabularyChange"),
            "description": "None new",
        },
        201: {
            "schema": envelope(VocabularyChangeSchema, "VocabularyChange"),
            "description": "Added",
        },
        400: INVALID,
        **ADMIN_ERRORS,
    },
)
@request_schema(VocabularyTagsSchema)
async def curate_vocabulary(request: web.Request) -> web.Response:
    return await _add(request, source="curated")


@routes.post("/recommender/vocabulary/promote")
@docs(
    tags=["recommender"],
    summary="Promote tags users chose into the global vocabulary (administrators)",
    security=BEARER,
    responses={
        200: {
            "schema": envelope(VocabularyChangeSchema, "VocabularyChange"),
            "description": "None new",
        },
        201: {
            "schema": envelope(VocabularyChangeSchema, "VocabularyChange"),
            "description": "Promoted",
        },
        400: INVALID,
        **ADMIN_ERRORS,
    },
)
@request_schema(VocabularyTagsSchema)
async def promote_vocabulary(request: web.Request) -> web.Response:
    return await _add(request, source="promoted")


@routes.get("/recommender/vocabulary/candidates")
@docs(
    tags=["recommender"],
    summary="Tags at least min_users users chose that the global vocabulary lacks"
    " (administrators; fewer users are never listed)",
    security=BEARER,
    responses={
        200: {
            "schema": envelope(PromotionCandidatesSchema, "PromotionCandidates"),
            "description": "Candidates",
        },
        400: INVALID,
        **ADMIN_ERRORS,
    },
)
@request_schema(PromotionQuerySchema, location="querystring")
async def promotion_candidates(request: web.Request) -> web.Response:
    await require_admin(request)
    query = request["data"]
    async with request.config_dict[DB_POOL].acquire() as conn:
        rows = await rec_rows.promotion_candidates(
            conn, min_users=query["min_users"], limit=query["limit"]
        )
    return ok({"candidates": [dict(r) for r in rows]})


@routes.delete("/recommender/vocabulary/{tag}")
@docs(
    tags=["recommender"],
    summary="Remove a tag from the global vocabulary (administrators; users' own copies stay)",
    security=BEARER,
    responses={200: {"description": "Removed"}, 404: NOT_FOUND, **ADMIN_ERRORS},
)
async def remove_vocabulary_tag(request: web.Request) -> web.Response:
    await require_admin(request)
    name = normalize_tag(request.match_info["tag"])
    async with request.config_dict[DB_POOL].acquire() as conn:
        removed = bool(name) and await rec_rows.remove_global_tag(conn, name)
    if not removed:
        raise NotFound("No such tag in the global vocabulary")
    request.config_dict[SCORER_CACHE].forget_global()
    return ok({"tag": name, "status": "removed"})
