"""Root-path aliases of api-workflow-guide.md over the same services as /api/v1."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, request_schema

from api.health import system_health
from api.keys import AUTH_SERVICE
from api.responses import plain
from api.schemas.auth import LoginSchema
from api.schemas.common import INVALID, RATE_LIMITED, UNAUTHORIZED
from api.schemas.legacy import LegacyTokenSchema
from api.schemas.system import HealthSchema

routes = web.RouteTableDef()


@routes.get("/health")
@docs(
    tags=["workflow"],
    summary="Is the system running? (database, Redis, storage, workers)",
    responses={
        200: {"schema": HealthSchema, "description": "Healthy or degraded"},
        503: {"schema": HealthSchema, "description": "A required component is down"},
    },
)
async def health(request: web.Request) -> web.Response:
    report = await system_health(request.app)
    return plain(report, status=503 if report["status"] == "unhealthy" else 200)


@routes.post("/login")
@docs(
    tags=["workflow"],
    summary="Get a JWT for secure access (form fields username, password)",
    responses={
        200: {"schema": LegacyTokenSchema, "description": "Tokens"},
        400: INVALID,
        401: UNAUTHORIZED,
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
