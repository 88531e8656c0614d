"""The OpenAPI 3 document and Swagger UI, generated from the handlers' schemas."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from aiohttp_apigami import setup_aiohttp_apispec
from aiohttp_apigami.constants import SWAGGER_DICT

from api.validation import raise_validation_error

OPENAPI_PATH = "/api/v1/openapi.json"
SWAGGER_UI_PATH = "/api/docs"

# Swagger 2.0 operation fields that aiohttp-apigami's @docs adds even when it
# emits OpenAPI 3, where they are invalid.
_SWAGGER2_ONLY = ("produces", "consumes")


API_DESCRIPTION = (
    "Text-to-media: uploads, script-to-video, streaming, webhooks.\n\n"
    "Guest mode (ALLOW_ANONYMOUS=true): anonymous callers of the root-path aliases"
    " are guests, each client its own. An answer to a client without a guest token"
    " carries one in the `X-Guest-Token` header and the `t2m_guest` cookie; send it"
    " back (cookie or `X-Guest-Token` request header) to stay the same guest, who"
    " sees only its own uploads. Rate limits and quotas of guests are counted per"
    " client address."
)
BEARER_DESCRIPTION = (
    "An access token of T2M (POST /api/v1/auth/login) or, when OIDC_ISSUER,"
    " OIDC_JWKS_URL and OIDC_AUDIENCE are set, an access token of that provider"
    " (its audience must be OIDC_AUDIENCE; a token whose `typ` or `token_use` says"
    " it is not an access token is refused).  Linking rule: a provider identity is"
    " never linked automatically to an existing account.  Its first use provisions"
    " a new account; if a T2M account already holds the provider's e-mail address"
    " (or the address is reserved), the request is answered 409 CONFLICT and no"
    " account is created or changed."
)


def setup_openapi(app: web.Application) -> None:
    setup_aiohttp_apispec(
        app,
        title="T2M API",
        version="1.1.0",
        url=OPENAPI_PATH,
        swagger_path=SWAGGER_UI_PATH,
        static_path=f"{SWAGGER_UI_PATH}/static",
        openapi_version="3.0.2",
        error_callback=raise_validation_error,
        in_place=True,  # every route is added before this call
        info={"description": API_DESCRIPTION},
        components={
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": BEARER_DESCRIPTION,
                }
            }
        },
    )
    _to_openapi3(app[SWAGGER_DICT])
    _add_links(app[SWAGGER_DICT])
    app.router.add_get("/docs", _docs_redirect)


def _to_openapi3(spec: dict[str, Any]) -> None:
    """Rewrite the Swagger 2.0 leftovers aiohttp-apigami emits into OpenAPI 3."""
    for path_item in spec.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for field in _SWAGGER2_ONLY:
                operation.pop(field, None)
            _form_parameters_to_request_body(operation)
            _document_input_errors(operation)


def _form_parameters_to_request_body(operation: dict[str, Any]) -> None:
    parameters = operation.get("parameters", [])
    form = [p for p in parameters if p.get("in") == "formData"]
    if not form:
        return
    operation["parameters"] = [p for p in parameters if p.get("in") != "formData"]
    properties: dict[str, Any] = {}
    for param in form:
        schema = dict(param.get("schema") or {"type": param.get("type", "string")})
        if param.get("description"):
            schema["description"] = param["description"]
        properties[param["name"]] = schema
    required = [p["name"] for p in form if p.get("required")]
    body_schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        body_schema["required"] = required
    has_files = any(s.get("format") == "binary" for s in properties.values())
    media_types = (
        ["multipart/form-data"]
        if has_files
        else [
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ]
    )
    operation["requestBody"] = {
        "required": bool(required),
        "content": {media: {"schema": body_schema} for media in media_types},
    }


def _document_input_errors(operation: dict[str, Any]) -> None:
    """Document the answers the request frame gives to bad input on every
    operation that takes input, so the document lists every status a client
    can meet (schema fuzzing checks it), not only those a handler raises."""
    responses = operation.setdefault("responses", {})
    takes_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
    takes_body = "requestBody" in operation
    if takes_query or takes_body:
        # Unknown or ill-typed query fields, malformed bodies, unstorable text.
        responses.setdefault("400", _error_entry("Validation failed (VALIDATION_ERROR)"))
    if takes_body:
        # A body in a content type the operation does not read.
        responses.setdefault(
            "415", _error_entry("Body in an unsupported content type (UNSUPPORTED_MEDIA_TYPE)")
        )


def _error_entry(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }


# Operations that create an object, and where its id is in their answer: every
# operation of the same family addressing that object by the path parameter is
# linked from the creation response, so clients (and schemathesis' stateful
# runs: upload → get → download → delete) can follow them.
_CREATORS: tuple[tuple[str, str, str, str, str], ...] = (
    # (creating path, method, status, id pointer, path prefix + parameter)
    ("/api/v1/files/upload", "post", "201", "/data/id", "/api/v1/files/{file_id}"),
    ("/api/v1/videos/generate", "post", "202", "/data/id", "/api/v1/jobs/{job_id}"),
    ("/api/v1/videos/generate", "post", "202", "/data/id", "/api/v1/videos/{job_id}"),
    ("/api/v1/webhooks", "post", "201", "/data/id", "/api/v1/webhooks/{webhook_id}"),
    ("/upload", "post", "201", "/content_id", "/content/{content_id}"),
    ("/upload", "post", "201", "/content_id", "/download/{content_id}"),
    ("/upload", "post", "201", "/content_id", "/stream/{content_id}"),
    ("/upload", "post", "201", "/content_id", "/recommend-tags/{content_id}"),
)


def _add_links(spec: dict[str, Any]) -> None:
    paths = spec.get("paths", {})
    for creator, creator_method, status, pointer, target_prefix in _CREATORS:
        response = paths.get(creator, {}).get(creator_method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        parameter = target_prefix.rsplit("{", 1)[1].rstrip("}")
        links = response.setdefault("links", {})
        for path, item in paths.items():
            # A Server-Sent Events stream stays open while its job runs: not
            # a step a client (or a stateful test) takes and waits out.
            if not path.startswith(target_prefix) or path.endswith("/events"):
                continue
            for method in item:
                if method in ("head", "options", "parameters"):
                    continue
                # Link names are limited to [A-Za-z0-9._-].
                name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{method}{path}").strip("_")
                escaped = path.replace("~", "~0").replace("/", "~1")
                links[name] = {
                    "operationRef": f"#/paths/{escaped}/{method}",
                    "parameters": {parameter: f"$response.body#{pointer}"},
                }


async def _docs_redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound(SWAGGER_UI_PATH)
