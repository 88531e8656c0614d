"""Response envelopes of the spec."""

from __future__ import annotations

import math
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


def pagination(page: int, items_per_page: int, total_items: int) -> dict[str, Any]:
    total_pages = max(1, math.ceil(total_items / items_per_page)) if total_items else 0
    has_next = page < total_pages
    has_previous = page > 1
    return {
        "page": page,
        "items_per_page": items_per_page,
        "total_items": total_items,
        "total_pages": total_pages,
        "has_next": has_next,
        "has_previous": has_previous,
        "next_page": page + 1 if has_next else None,
        "previous_page": page - 1 if has_previous else None,
    }
