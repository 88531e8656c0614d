"""/api/v1/feedback and /api/v1/files/{id}/recommended-tags."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, request_schema

from api import file_service
from api.authn import require_user
from api.feedback_service import record_feedback
from api.keys import SCORER_CACHE
from api.responses import ok
from api.schemas.common import INVALID, NOT_FOUND, UNAUTHORIZED, envelope
from api.schemas.feedback import (
    FeedbackRecordedSchema,
    FeedbackSchema,
    RecommendationSchema,
    RecommendQuerySchema,
)

routes = web.RouteTableDef()
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


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
