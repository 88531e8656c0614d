"""How request-validation failures of the schema decorators become errors."""

from __future__ import annotations

from typing import Any, NoReturn

from aiohttp import web
from marshmallow import Schema, ValidationError

from t2m.errors import UnsupportedMediaType, ValidationFailed

_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def _flatten(messages: Any) -> Any:
    # webargs nests messages under the location ({"json": {...}}); the spec's
    # details are per field, so the location level is dropped.
    if isinstance(messages, dict) and len(messages) == 1:
        ((location, inner),) = messages.items()
        if location in ("json", "form", "querystring", "query", "match_info", "headers", "files"):
            return inner
    return messages


def raise_validation_error(
    error: ValidationError,
    request: web.Request,
    schema: Schema,
    *,
    error_status_code: int | None = None,
    error_headers: Any = None,
) -> NoReturn:
    locations = error.messages.keys() if isinstance(error.messages, dict) else ()
    if "json" in locations and request.body_exists and request.content_type != "application/json":
        raise UnsupportedMediaType("Send the body as JSON (Content-Type: application/json)")
    if "form" in locations and request.body_exists and request.content_type not in _FORM_TYPES:
        raise UnsupportedMediaType(
            "Send form fields (multipart/form-data or application/x-www-form-urlencoded)"
        )
    raise ValidationFailed("Request validation failed", _flatten(error.messages))
