"""/api/v1/admin/users/*: accounts waiting for approval and per-user quotas (admins only)."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web
from aiohttp_apigami import docs, request_schema

from api.admin.schemas import (
    AdminUserListSchema,
    AdminUserSchema,
    QuotaUpdateSchema,
    UserListQuerySchema,
    UserQuotaSchema,
)
from api.auth.authn import require_admin
from api.auth.service import profile
from api.common_schemas import (
    BEARER,
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    UNAUTHORIZED,
    envelope,
    error_doc,
)
from api.keys import DB_POOL, SETTINGS
from api.quotas import quota_view
from api.responses import ok
from db import quotas as quota_rows
from db import users as user_rows
from t2m.errors import Conflict, NotFound
from t2m.ids import is_id
from t2m.pagination import page_of, page_window
from t2m.settings import Settings

routes = web.RouteTableDef()
ADMIN_ERRORS: dict[int, Any] = {401: UNAUTHORIZED, 403: FORBIDDEN}


def _user_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        **profile(row),
        "pending_approval": row["pending_approval"],
        "is_active": row["is_active"],
    }


def _no_such_user(user_id: str) -> NotFound:
    return NotFound("User not found", f"User with ID '{user_id}' does not exist")


def _user_id(request: web.Request) -> str:
    user_id = request.match_info["user_id"]
    if not is_id(user_id, "usr"):
        raise _no_such_user(user_id)
    return user_id


def _defaults(settings: Settings) -> dict[str, int]:
    return {
        "stored_bytes": settings.quota_stored_bytes,
        "files": settings.quota_files,
        "render_seconds_per_day": settings.quota_render_seconds_per_day,
        "concurrent_jobs": settings.quota_concurrent_jobs,
    }


async def _quota_answer(
    conn: asyncpg.Connection, settings: Settings, user_id: str
) -> dict[str, Any]:
    row = await quota_rows.quota_row(conn, user_id)
    if row is None:
        raise _no_such_user(user_id)
    limits = quota_rows.limits_of(row, settings)
    usage = await quota_rows.usage_of(conn, user_id)
    return {
        "user_id": user_id,
        "quota": quota_view(limits, usage),
        "overrides": {name: row[column] for name, column in quota_rows.OVERRIDE_COLUMNS.items()},
        "defaults": _defaults(settings),
    }


@routes.get("/admin/users")
@docs(
    tags=["admin"],
    summary="List accounts, newest first (pending=true: those waiting for approval)",
    security=BEARER,
    responses={
        200: {"schema": envelope(AdminUserListSchema, "AdminUserList"), "description": "A page"},
        400: INVALID,
        **ADMIN_ERRORS,
    },
)
@request_schema(UserListQuerySchema, location="querystring")
async def list_users(request: web.Request) -> web.Response:
    await require_admin(request)
    query = request["data"]
    async with request.config_dict[DB_POOL].acquire() as conn:
        rows, total = await user_rows.list_users(
            conn,
            pending=query.get("pending"),
            **page_window(query),
        )
    return ok(page_of([_user_view(r) for r in rows], query, total))


@routes.post("/admin/users/{user_id}/approve")
@docs(
    tags=["admin"],
    summary="Approve an account registered while REGISTRATION=approval",
    security=BEARER,
    responses={
        200: {"schema": envelope(AdminUserSchema, "ApprovedUser"), "description": "Approved"},
        **ADMIN_ERRORS,
        404: NOT_FOUND,
        409: error_doc("The account is not waiting for approval (CONFLICT)"),
    },
)
async def approve_user(request: web.Request) -> web.Response:
    await require_admin(request)
    user_id = _user_id(request)
    async with request.config_dict[DB_POOL].acquire() as conn:
        row = await user_rows.approve_user(conn, user_id)
        if row is None:
            if await user_rows.user_by_id(conn, user_id) is None:
                raise _no_such_user(user_id)
            raise Conflict("The account is not waiting for approval", {"user_id": user_id})
    return ok(_user_view(row), "Account approved; the user can sign in")


@routes.get("/admin/users/{user_id}/quota")
@docs(
    tags=["admin"],
    summary="A user's quota: use, limits, their overrides and the server defaults",
    security=BEARER,
    responses={
        200: {"schema": envelope(UserQuotaSchema, "UserQuota"), "description": "Quota"},
        **ADMIN_ERRORS,
        404: NOT_FOUND,
    },
)
async def get_quota(request: web.Request) -> web.Response:
    await require_admin(request)
    user_id = _user_id(request)
    async with request.config_dict[DB_POOL].acquire() as conn:
        answer = await _quota_answer(conn, request.config_dict[SETTINGS], user_id)
    return ok(answer)


@routes.patch("/admin/users/{user_id}/quota")
@docs(
    tags=["admin"],
    summary="Override a user's quotas (null: back to the server default)",
    security=BEARER,
    responses={
        200: {"schema": envelope(UserQuotaSchema, "UpdatedUserQuota"), "description": "Updated"},
        400: INVALID,
        **ADMIN_ERRORS,
        404: NOT_FOUND,
    },
)
@request_schema(QuotaUpdateSchema)
async def update_quota(request: web.Request) -> web.Response:
    await require_admin(request)
    user_id = _user_id(request)
    async with request.config_dict[DB_POOL].acquire() as conn:
        if not await quota_rows.set_overrides(conn, user_id, dict(request["data"])):
            raise _no_such_user(user_id)
        answer = await _quota_answer(conn, request.config_dict[SETTINGS], user_id)
    return ok(answer, "Quota updated")


__all__ = ["routes"]
