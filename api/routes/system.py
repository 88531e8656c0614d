"""/api/v1/system/*: health (and, later, metrics and maintenance views)."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs

from api.health import system_health
from api.responses import dumps_json
from api.schemas.common import envelope
from api.schemas.system import HealthSchema

routes = web.RouteTableDef()


@routes.get("/system/health")
@docs(
    tags=["system"],
    summary="Health of the database, Redis, storage and workers",
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
    report = await system_health(request.app)
    healthy = report["status"] != "unhealthy"
    body = {"success": healthy, "data": report}
    if not healthy:
        body["error"] = {
            "code": "SERVICE_UNAVAILABLE",
            "message": "A required component is down",
            "details": {
                name: c.get("error") for name, c in report["components"].items() if c.get("error")
            },
        }
    return web.json_response(body, status=200 if healthy else 503, dumps=dumps_json)
