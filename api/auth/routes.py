"""/api/v1/auth/*: sign-in, tokens, and who-am-I endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, request_schema

from api.auth.authn import optional_user, require_user, require_verified
from api.auth.schemas import (
    AuthHealthSchema,
    AuthStatusSchema,
    LoginSchema,
    LogoutSchema,
    MeSchema,
    PasswordChangeSchema,
    PermissionsSchema,
    ProtectedTestSchema,
    RefreshSchema,
    RegisteredUserSchema,
    RegisterSchema,
    TokenPairSchema,
    VerifySchema,
)
from api.auth.service import AUTH_SERVICE, permissions_of, profile
from api.common_schemas import (
    ACCOUNT_PENDING,
    BEARER,
    INVALID,
    RATE_LIMITED,
    UNAUTHORIZED,
    envelope,
    error_doc,
)
from api.keys import DB_POOL, SETTINGS
from api.quotas import quota_of
from api.responses import ok, plain

routes = web.RouteTableDef()


def _context(request: web.Request) -> dict[str, Any]:
    return {"path": request.path, "method": request.method, "client_ip": request.remote}


def _now() -> datetime:
    return datetime.now(UTC)


@routes.get("/auth/health")
@docs(
    tags=["auth"],
    summary="Authentication service health",
    responses={200: {"schema": AuthHealthSchema, "description": "Healthy"}},
)
async def auth_health(request: web.Request) -> web.Response:
    settings = request.config_dict[SETTINGS]
    provider = "oidc" if settings.oidc_enabled else "local"
    return plain(
        {
            "status": "healthy",
            "provider": {"type": provider, "issuer": settings.oidc_issuer or settings.jwt_issuer},
            "message": "Authentication service health check completed",
        }
    )


@routes.get("/auth/status")
@docs(
    tags=["auth"],
    summary="Authentication status of the caller",
    security=BEARER,
    responses={200: {"schema": AuthStatusSchema, "description": "Status"}, 401: UNAUTHORIZED},
)
async def auth_status(request: web.Request) -> web.Response:
    principal = await optional_user(request)
    if principal is None:
        return plain(
            {
                "authenticated": False,
                "message": "No authentication provided",
                "request_context": _context(request),
            }
        )
    return plain(
        {
            "authenticated": True,
            "user_id": principal.user_id,
            "email": principal.email,
            "email_verified": principal.email_verified,
            "request_context": _context(request),
        }
    )


@routes.get("/auth/me")
@docs(
    tags=["auth"],
    summary="Profile of the signed-in user, with their quota use and limits",
    security=BEARER,
    responses={200: {"schema": MeSchema, "description": "Profile"}, 401: UNAUTHORIZED},
)
async def me(request: web.Request) -> web.Response:
    principal = await require_user(request)
    app = request.config_dict
    quota = await quota_of(app[DB_POOL], app[SETTINGS], principal.user_id)
    return plain({**profile(principal), "quota": quota})


@routes.get("/auth/permissions")
@docs(
    tags=["auth"],
    summary="Role and permissions of the signed-in user",
    security=BEARER,
    responses={200: {"schema": PermissionsSchema, "description": "Permissions"}, 401: UNAUTHORIZED},
)
async def permissions(request: web.Request) -> web.Response:
    return plain(permissions_of(await require_user(request)))


@routes.get("/auth/test-protected")
@docs(
    tags=["auth"],
    summary="Test endpoint for authenticated users",
    security=BEARER,
    responses={200: {"schema": ProtectedTestSchema, "description": "OK"}, 401: UNAUTHORIZED},
)
async def test_protected(request: web.Request) -> web.Response:
    principal = await require_user(request)
    return plain(
        {
            "message": "Successfully accessed protected endpoint",
            "user_id": principal.user_id,
            "timestamp": _now(),
        }
    )


@routes.get("/auth/test-verified")
@docs(
    tags=["auth"],
    summary="Test endpoint for users with a verified e-mail",
    security=BEARER,
    responses={
        200: {"schema": ProtectedTestSchema, "description": "OK"},
        401: UNAUTHORIZED,
        403: error_doc("E-mail address not verified"),
    },
)
async def test_verified(request: web.Request) -> web.Response:
    principal = await require_verified(request)
    return plain(
        {
            "message": "Successfully accessed verified user endpoint",
            "user_id": principal.user_id,
            "email": principal.email,
            "email_verified": principal.email_verified,
            "timestamp": _now(),
        }
    )


@routes.post("/auth/verify")
@docs(
    tags=["auth"],
    summary="Verify the bearer token",
    security=BEARER,
    responses={200: {"schema": VerifySchema, "description": "Valid"}, 401: UNAUTHORIZED},
)
async def verify(request: web.Request) -> web.Response:
    principal = await require_user(request)
    return plain(
        {
            "verified": True,
            "user_id": principal.user_id,
            "email": principal.email,
            "email_verified": principal.email_verified,
            "message": "Token verified successfully",
        }
    )


@routes.post("/auth/register")
@docs(
    tags=["auth"],
    summary="Create an account (REGISTRATION: open, approval or closed)",
    responses={
        201: {
            "schema": envelope(RegisteredUserSchema, "RegisteredUser"),
            "description": "Created (with REGISTRATION=approval: waiting for an admin)",
        },
        400: INVALID,
        403: error_doc("Registration is closed on this server (REGISTRATION_CLOSED)"),
        409: error_doc("Username or e-mail already registered"),
    },
)
@request_schema(RegisterSchema)
async def register(request: web.Request) -> web.Response:
    data = request["data"]
    user = await request.config_dict[AUTH_SERVICE].register(
        username=data["username"],
        email=data["email"],
        password=data["password"],
        full_name=data.get("full_name"),
    )
    if user["pending_approval"]:
        return ok(
            user,
            "Account created; an administrator must approve it before you can sign in",
            status=201,
        )
    return ok(user, "Account created", status=201)


@routes.post("/auth/login")
@docs(
    tags=["auth"],
    summary="Sign in with username (or e-mail) and password",
    responses={
        200: {"schema": envelope(TokenPairSchema, "LoginResult"), "description": "Tokens"},
        401: UNAUTHORIZED,
        403: ACCOUNT_PENDING,
        429: RATE_LIMITED,
    },
)
@request_schema(LoginSchema)
async def login(request: web.Request) -> web.Response:
    data = request["data"]
    result = await request.config_dict[AUTH_SERVICE].login(
        data["username"], data["password"], request.remote or "-"
    )
    return ok(result, "Signed in")


@routes.post("/auth/refresh")
@docs(
    tags=["auth"],
    summary="Exchange a refresh token for a new token pair (the old one stops working)",
    responses={
        200: {"schema": envelope(TokenPairSchema, "RefreshResult"), "description": "New tokens"},
        401: UNAUTHORIZED,
    },
)
@request_schema(RefreshSchema)
async def refresh(request: web.Request) -> web.Response:
    result = await request.config_dict[AUTH_SERVICE].refresh(request["data"]["refresh_token"])
    return ok(result, "Token refreshed")


@routes.post("/auth/logout")
@docs(
    tags=["auth"],
    summary="Revoke the bearer token (and optionally a refresh token)",
    security=BEARER,
    responses={200: {"description": "Signed out"}, 401: UNAUTHORIZED},
)
@request_schema(LogoutSchema)
async def logout(request: web.Request) -> web.Response:
    principal = await require_user(request)
    await request.config_dict[AUTH_SERVICE].logout(principal, request["data"].get("refresh_token"))
    return ok(None, "Signed out")


@routes.post("/auth/password")
@docs(
    tags=["auth"],
    summary="Change the password (the current one is required); ends every other session",
    description=(
        "Every token issued to the account before the change stops working, on every"
        " device; the answer carries a fresh token pair for the caller."
    ),
    security=BEARER,
    responses={
        200: {"schema": envelope(TokenPairSchema, "PasswordChanged"), "description": "New tokens"},
        400: INVALID,
        401: UNAUTHORIZED,
        429: RATE_LIMITED,
    },
)
@request_schema(PasswordChangeSchema)
async def change_password(request: web.Request) -> web.Response:
    principal = await require_user(request)
    data = request["data"]
    result = await request.config_dict[AUTH_SERVICE].change_password(
        principal, data["current_password"], data["new_password"], request.remote or "-"
    )
    return ok(result, "Password changed; other sessions are signed out")


@routes.post("/auth/logout-all")
@docs(
    tags=["auth"],
    summary="Sign out everywhere: revoke every access and refresh token of the account",
    security=BEARER,
    responses={200: {"description": "Signed out everywhere"}, 401: UNAUTHORIZED},
)
async def logout_all(request: web.Request) -> web.Response:
    principal = await require_user(request)
    await request.config_dict[AUTH_SERVICE].logout_all(principal)
    return ok(None, "Signed out everywhere")


__all__ = ["routes"]
