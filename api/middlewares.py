"""The outermost middlewares: request id, access log, and the error envelope.

Every failure leaves the API as the envelope of the spec: domain exceptions
keep their code; aiohttp's own HTTP errors (unknown route, wrong method, body
too large, malformed JSON) are translated; anything unexpected is logged with
the request id and answered as a bare ``SERVER_ERROR``.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from typing import Any

import asyncpg
import redis.exceptions
from aiohttp import web
from aiohttp.helpers import parse_mimetype
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.typedefs import Handler

from api.responses import error_response
from t2m import errors
from t2m.logs import request_id_var

log = logging.getLogger(__name__)
access_log = logging.getLogger("t2m.access")

REQUEST_ID_HEADER = "X-Request-ID"
CLIENT_CLOSED_REQUEST = 499
REQUEST_ID = web.RequestKey("request_id", str)
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

_HTTP_ERRORS: dict[int, type[errors.T2MError]] = {
    400: errors.ValidationFailed,
    401: errors.AuthRequired,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    409: errors.Conflict,
    413: errors.PayloadTooLarge,
    415: errors.UnsupportedMediaType,
    416: errors.RangeNotSatisfiable,
    429: errors.RateLimited,
    503: errors.ServiceUnavailable,
}


_UNSTORABLE_TEXT = errors.ValidationFailed(
    "Request validation failed: text must not contain NUL characters or lone surrogates"
)


def _translate_http_error(exc: web.HTTPException) -> errors.T2MError:
    kind = _HTTP_ERRORS.get(exc.status)
    if kind is None:
        kind = errors.ValidationFailed if 400 <= exc.status < 500 else errors.T2MError
    details: Any = None
    if exc.status == 400 and exc.text:
        try:
            details = json.loads(exc.text)
        except ValueError:
            details = exc.text
    message = {
        404: "No such endpoint",
        405: "Method not allowed; allowed: "
        + ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ())),
        413: "Request body too large",
        400: "Malformed request",
    }.get(exc.status)
    translated = kind(message, details)
    translated.status = exc.status
    if exc.status == 405:
        translated.headers = {"Allow": exc.headers.get("Allow", "")}
    return translated


def _refuse_unparsable_body(request: web.Request) -> None:
    # aiohttp's multipart reader raises a bare ValueError on a multipart body
    # without a boundary; no handler can read one, so refuse it up front.
    content_type = request.headers.get("Content-Type", "")
    if request.content_type.startswith("multipart/") and not parse_mimetype(
        content_type
    ).parameters.get("boundary"):
        raise errors.ValidationFailed("Malformed request", "multipart body without a boundary")


@web.middleware
async def request_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else secrets.token_hex(8)
    token = request_id_var.set(request_id)
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    status = 500
    try:
        response = await _answer(request, handler, request_id)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    finally:
        elapsed_ms = (time.perf_counter() - started) * 1000
        # The path only, never the query string: it can carry credentials
        # (the events stream's ?token=, signed links' signatures).
        access_log.info(
            "%s %s %s %.1fms", request.method, request.rel_url.raw_path, status, elapsed_ms
        )
        request_id_var.reset(token)


async def _answer(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    try:
        _refuse_unparsable_body(request)
        return await handler(request)
    except errors.StorageError as exc:
        # Its message names keys and backend errors: for the log, not the client.
        log.warning("storage: %s", exc.message, exc_info=exc.__cause__ is not None)
        return error_response(errors.StorageError(exc.public_message, full=exc.full))
    except errors.T2MError as exc:
        if exc.status >= 500:
            log.warning("%s: %s", exc.code, exc.message, exc_info=exc.__cause__ is not None)
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and 304s are answers, not errors
        return error_response(_translate_http_error(exc))
    except BadHttpMessage as exc:
        # A malformed multipart part header surfaces while the handler reads
        # the body, after aiohttp's own parser has answered the request line.
        return error_response(errors.ValidationFailed("Malformed request", str(exc.message)))
    except (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError):
        # Text PostgreSQL cannot store (NUL) can only come from the client:
        # every string of ours is valid text.
        return error_response(_UNSTORABLE_TEXT)
    except UnicodeEncodeError as exc:
        if exc.reason == "surrogates not allowed":
            # A lone UTF-16 surrogate decoded from a JSON \uD800 escape: valid
            # JSON, but not text any store can encode.
            return error_response(_UNSTORABLE_TEXT)
        log.exception("unhandled error")
        return error_response(errors.T2MError(), request_id=request_id)
    except (
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
        asyncpg.TooManyConnectionsError,
        asyncpg.InterfaceError,
        # A connection terminated mid-query (server restart) can fail its
        # reset on release with a protocol-state error: the same outage.
        asyncpg.InternalClientError,
        ConnectionError,
        TimeoutError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
    ) as exc:
        if request.transport is None or request.transport.is_closing():
            # The client went away (a write to its closed connection failed):
            # no dependency is down and nobody is left to answer.  499 is the
            # conventional "client closed request", for the access log.
            return web.Response(status=CLIENT_CLOSED_REQUEST)
        # A dependency is down: tell the client to come back, do not hang.
        log.warning("dependency unavailable: %r", exc)
        return error_response(errors.ServiceUnavailable())
    except Exception:
        log.exception("unhandled error")
        return error_response(errors.T2MError(), request_id=request_id)


async def name_the_server(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: ``Server: T2M`` on every answer, replacing
    aiohttp's default, which names the Python and aiohttp versions."""
    response.headers["Server"] = "T2M"
