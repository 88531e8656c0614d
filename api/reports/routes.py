"""Root-path reports of the workflow guide: video statistics and streaming performance.

Callers see figures about their own content; administrators see everyone's.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, request_schema
from marshmallow import Schema, fields, validate

from api.auth.authn import require_user
from api.cache.glue import CACHE, cached_json
from api.common_schemas import BEARER, INVALID, UNAUTHORIZED
from api.keys import DB_POOL
from pipeline.maintenance import cached_reads

routes = web.RouteTableDef()


class WindowQuerySchema(Schema):
    hours = fields.Float(
        load_default=24.0, validate=validate.Range(min=0.01, max=24 * 365, error="0.01 to 8760")
    )


@routes.get("/reports/video-stats")
@docs(
    tags=["workflow"],
    summary="Generated videos: jobs by status, durations, render-time percentiles, engagement",
    security=BEARER,
    responses={200: {"description": "Statistics"}, 401: UNAUTHORIZED},
)
async def video_stats(request: web.Request) -> web.Response:
    principal = await require_user(request, allow_guest=True)
    stats = cached_reads.video_stats(
        request.config_dict[DB_POOL], cached_reads.Viewer(principal.user_id, principal.is_admin)
    )
    return cached_json(await cached_reads.read(request.config_dict[CACHE], stats), envelope=False)


@routes.get("/streaming-performance")
@docs(
    tags=["workflow"],
    summary="Stream sessions, bytes, mean and p95 throughput and duration by quality",
    security=BEARER,
    responses={200: {"description": "Streaming figures"}, 400: INVALID, 401: UNAUTHORIZED},
)
@request_schema(WindowQuerySchema, location="querystring")
async def streaming_performance(request: web.Request) -> web.Response:
    principal = await require_user(request, allow_guest=True)
    figures = cached_reads.streaming_performance(
        request.config_dict[DB_POOL],
        cached_reads.Viewer(principal.user_id, principal.is_admin),
        request["data"]["hours"],
    )
    return cached_json(await cached_reads.read(request.config_dict[CACHE], figures), envelope=False)
