"""Response envelopes of the spec."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from t2m.errors import T2MError
from t2m.json_text import dumps_json


def ok(data: Any, message: str | None = None, *, status: int = 200) -> web.Response:
    body: dict[str, Any] = {"success": True, "data": data}
    if message is not None:
        body["message"] = message
    return web.json_response(body, status=status, dumps=dumps_json)


def plain(data: Any, *, status: int = 200) -> web.Response:
    """A bare JSON body, for the endpoints whose spec shape has no envelope."""
    return web.json_response(data, status=status, dumps=dumps_json)


def error_response(exc: T2MError, *, request_id: str | None = None) -> web.Response:
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.details is not None:
        error["details"] = exc.details
    if request_id:
        error["request_id"] = request_id
    return web.json_response(
        {"success": False, "error": error}, status=exc.status, headers=exc.headers, dumps=dumps_json
    )
