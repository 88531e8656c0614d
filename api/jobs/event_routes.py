"""/api/v1/jobs/{id}/events: live job events over Server-Sent Events."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, request_schema

from api.auth.authn import require_user
from api.common_schemas import BEARER, INVALID, NOT_FOUND, UNAUTHORIZED, envelope, error_doc
from api.jobs import service as job_service
from api.jobs.event_schemas import EventsQuerySchema, EventsTokenSchema
from api.jobs.event_stream import (
    EVENTS_TOKEN_TTL_S,
    authorised_job,
    issue_events_token,
    requested_resume,
    stream_job,
)
from api.keys import SETTINGS
from api.responses import ok

# Mounted under /api/v1.
routes = web.RouteTableDef()

STREAM_DESCRIPTION = (
    "A text/event-stream. Each event has `id` (a per-job sequence number), `event` and JSON"
    " `data`. Types: `snapshot` (the job as GET /jobs/{id} shows it; first, unless resuming),"
    " `status`, `progress`, `stage`, `log`, and the terminal `end`"
    " (`{status, progress, error?, output_file_id?}`), after which the stream closes."
    " Keep-alive comments every 15 s."
)


@routes.get("/jobs/{job_id}/events")
@docs(
    tags=["jobs"],
    summary="Follow a job live (Server-Sent Events; resumable with Last-Event-ID)",
    description=STREAM_DESCRIPTION,
    security=BEARER,
    parameters=[
        {
            "in": "header",
            "name": "Last-Event-ID",
            "required": False,
            "schema": {"type": "integer", "minimum": 0},
            "description": "Resume after this event id: every later event still kept follows",
        }
    ],
    responses={
        200: {"description": STREAM_DESCRIPTION},
        400: INVALID,
        401: UNAUTHORIZED,
        404: NOT_FOUND,
        503: error_doc("Redis is unavailable (SERVICE_UNAVAILABLE)"),
    },
)
@request_schema(EventsQuerySchema, location="querystring")
async def job_events(request: web.Request) -> web.StreamResponse:
    query = request["data"]
    resume_after = requested_resume(request, query)
    row = await authorised_job(request, request.match_info["job_id"], query.get("token"))
    return await stream_job(request, row, resume_after)


@routes.post("/jobs/{job_id}/events/token")
@docs(
    tags=["jobs"],
    summary="A 60-second token that opens this job's event stream (for EventSource)",
    security=BEARER,
    responses={
        200: {"schema": envelope(EventsTokenSchema, "EventsToken"), "description": "The token"},
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
async def job_events_token(request: web.Request) -> web.Response:
    principal = await require_user(request)
    row = await job_service.get_visible_job(request, principal, request.match_info["job_id"])
    token = issue_events_token(
        request.config_dict[SETTINGS],
        user_id=principal.user_id,
        role=principal.role,
        job_id=row["id"],
        generation=principal.token_generation,
    )
    return ok(
        {
            "token": token,
            "expires_in": EVENTS_TOKEN_TTL_S,
            "url": f"/api/v1/jobs/{row['id']}/events?token={token}",
        }
    )
