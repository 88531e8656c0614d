"""/api/v1/system/*: health (and, later, metrics and maintenance views)."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, request_schema

from api.auth.authn import require_admin
from api.common_schemas import FORBIDDEN, INVALID, UNAUTHORIZED, envelope
from api.keys import DB_POOL
from api.monitoring.health import liveness, report_for
from api.monitoring.operations_schemas import MaintenanceRunListSchema, MaintenanceRunsQuerySchema
from api.monitoring.system_schemas import HealthSchema, LivenessSchema
from api.responses import dumps_json, ok
from db import operations as op_rows
from t2m.pagination import pagination

routes = web.RouteTableDef()


@routes.get("/system/health")
@docs(
    tags=["system"],
    summary="Health of the database, Redis, storage and workers",
    description=(
        "Anyone gets each component's status and latency and the number of live"
        " workers; an administrator's token adds the version, the workers' hosts,"
        " pids and queues, the storage backend and error texts."
    ),
    security=[{}, {"bearerAuth": []}],
    responses={
        200: {
            "schema": envelope(HealthSchema, "SystemHealth"),
            "description": "Healthy or degraded",
        },
        503: {
            "schema": envelope(HealthSchema, "SystemHealthDown"),
            "description": "A required component is down",
        },
    },
)
async def health(request: web.Request) -> web.Response:
    report, full = await report_for(request)
    healthy = report["status"] != "unhealthy"
    body = {"success": healthy, "data": report}
    if not healthy:
        body["error"] = {
            "code": "SERVICE_UNAVAILABLE",
            "message": "A required component is down",
            # Error texts (hosts, paths, library versions) for administrators only.
            "details": {
                name: c.get("error") if full else c["status"]
                for name, c in report["components"].items()
                if c["status"] == "unhealthy"
            },
        }
    return web.json_response(body, status=200 if healthy else 503, dumps=dumps_json)


@routes.get("/system/health/live")
@docs(
    tags=["system"],
    summary="Is this API process alive? (no dependency is checked)",
    responses={200: {"schema": envelope(LivenessSchema, "SystemLiveness"), "description": "Alive"}},
)
async def health_live(request: web.Request) -> web.Response:
    return ok(liveness())


@routes.get("/system/maintenance-runs")
@docs(
    tags=["system"],
    summary="Recent maintenance runs: task, duration, outcome, counts (admin)",
    responses={
        200: {
            "schema": envelope(MaintenanceRunListSchema, "MaintenanceRuns"),
            "description": "A page, newest first",
        },
        400: INVALID,
        401: UNAUTHORIZED,
        403: FORBIDDEN,
    },
)
@request_schema(MaintenanceRunsQuerySchema, location="querystring")
async def maintenance_runs(request: web.Request) -> web.Response:
    await require_admin(request)
    query = request["data"]
    page, per_page = query["page"], query["items_per_page"]
    async with request.config_dict[DB_POOL].acquire() as conn:
        rows, total = await op_rows.list_maintenance_runs(
            conn, job=query.get("job"), limit=per_page, offset=(page - 1) * per_page
        )
    return ok({"items": [dict(r) for r in rows], "pagination": pagination(page, per_page, total)})
