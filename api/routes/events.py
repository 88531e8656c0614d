"""/api/v1/jobs/{id}/events: live job events over Server-Sent Events."""

from __future__ import annotations

from aiohttp import web

# Routes mounted under /api/v1, and routes at the root path.
routes = web.RouteTableDef()
root_routes = web.RouteTableDef()
