"""Root-path maintenance endpoints (admin): cleanup, log rotation, failed operations.

They run the same task functions as the scheduler and the CLI, synchronously,
and answer what was removed; each run is recorded in ``maintenance_runs``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, request_schema

from api.auth.authn import require_admin
from api.cache.glue import after_write
from api.common_schemas import FORBIDDEN, INVALID, NOT_FOUND, UNAUTHORIZED, error_doc
from api.keys import DB_POOL, ENQUEUER, REDIS, SETTINGS, STORAGE
from api.monitoring.operations_schemas import (
    CleanupQuerySchema,
    CleanupResultSchema,
    FailedOperationListSchema,
    FailedOperationsQuerySchema,
    RetryResultSchema,
    RotateLogsQuerySchema,
    RotateResultSchema,
)
from api.responses import plain
from db import housekeeping
from db import jobs as job_rows
from db import operations as op_rows
from pipeline.maintenance.context import MaintenanceContext, build_context
from pipeline.maintenance.registry import run_task
from t2m.errors import Conflict, NotFound
from t2m.pagination import pagination
from t2m.queues import VIDEO_STAGE_ACTORS

routes = web.RouteTableDef()

ADMIN_ERRORS: dict[int, dict[str, Any]] = {400: INVALID, 401: UNAUTHORIZED, 403: FORBIDDEN}


def maintenance_context(app: web.Application) -> MaintenanceContext:
    return build_context(
        app[SETTINGS],
        pool=app[DB_POOL],
        storage=app[STORAGE],
        enqueuer=app[ENQUEUER],
        redis=app[REDIS],
    )


@routes.post("/bucket/cleanup")
@docs(
    tags=["maintenance"],
    summary="Delete tmp/ objects and local temp dirs older than max_age_hours (admin)",
    responses={200: {"schema": CleanupResultSchema, "description": "What was removed"}}
    | ADMIN_ERRORS,
)
@request_schema(CleanupQuerySchema, location="querystring")
async def cleanup(request: web.Request) -> web.Response:
    await require_admin(request)
    params: dict[str, Any] = dict(request["data"])
    return plain(await run_task(maintenance_context(request.app), "clean_tmp", **params))


@routes.post("/bucket/rotate-logs")
@docs(
    tags=["maintenance"],
    summary="Archive job logs and logs/ objects older than max_age_days (admin)",
    responses={200: {"schema": RotateResultSchema, "description": "What was archived"}}
    | ADMIN_ERRORS,
)
@request_schema(RotateLogsQuerySchema, location="querystring")
async def rotate_logs(request: web.Request) -> web.Response:
    await require_admin(request)
    params: dict[str, Any] = dict(request["data"])
    return plain(await run_task(maintenance_context(request.app), "rotate_logs", **params))


@routes.get("/maintenance/failed-operations")
@docs(
    tags=["maintenance"],
    summary="Failed pipeline operations, newest first (admin)",
    responses={200: {"schema": FailedOperationListSchema, "description": "A page"}} | ADMIN_ERRORS,
)
@request_schema(FailedOperationsQuerySchema, location="querystring")
async def failed_operations(request: web.Request) -> web.Response:
    await require_admin(request)
    query = request["data"]
    page, per_page = query["page"], query["items_per_page"]
    async with request.config_dict[DB_POOL].acquire() as conn:
        rows, total = await op_rows.list_failed_operations(
            conn, stage=query.get("stage"), limit=per_page, offset=(page - 1) * per_page
        )
    return plain(
        {"items": [dict(r) for r in rows], "pagination": pagination(page, per_page, total)}
    )


@routes.post("/maintenance/failed-operations/{op_id}/retry")
@docs(
    tags=["maintenance"],
    summary="Re-enqueue the failed stage of a job (admin)",
    responses={
        200: {"schema": RetryResultSchema, "description": "Re-enqueued"},
        404: NOT_FOUND,
        409: error_doc("Not a job stage, or the job is no longer failed (CONFLICT)"),
    }
    | ADMIN_ERRORS,
)
async def retry_failed_operation(request: web.Request) -> web.Response:
    await require_admin(request)
    raw = request.match_info["op_id"]
    if not raw.isdigit():
        raise NotFound("No such failed operation")
    op_id = int(raw)
    async with request.config_dict[DB_POOL].acquire() as conn, conn.transaction():
        op = await op_rows.failed_operation(conn, op_id)
        if op is None:
            raise NotFound("No such failed operation")
        ref = VIDEO_STAGE_ACTORS.get(op["stage"])
        if op["job_id"] is None or ref is None:
            raise Conflict(f"Stage {op['stage']!r} of this operation cannot be retried here")
        if not await op_rows.reopen_job(conn, op["job_id"], op["stage"]):
            raise Conflict("The job is no longer failed (already retried, cancelled or deleted)")
        await job_rows.add_log(
            conn, op["job_id"], "INFO", f"Stage {op['stage']} retried by an administrator"
        )
        await op_rows.mark_retried(conn, op_id)
        owners = await housekeeping.owners_of_jobs(conn, [op["job_id"]])
    await after_write(request, *owners)
    message_id = await request.config_dict[ENQUEUER].send(ref, op["job_id"])
    return plain(
        {"id": op_id, "job_id": op["job_id"], "stage": op["stage"], "message_id": message_id}
    )
