"""/api/v1/jobs/*: list, inspect, follow the logs of, cancel and delete jobs."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, request_schema

from api.auth.authn import require_user
from api.common_schemas import BEARER, INVALID, NOT_FOUND, UNAUTHORIZED, envelope, error_doc
from api.jobs import service as job_service
from api.jobs.schemas import (
    JobListQuerySchema,
    JobListSchema,
    JobLogsQuerySchema,
    JobLogsSchema,
    JobSchema,
)
from api.jobs.views import job_view
from api.keys import DB_POOL
from api.responses import ok
from db import jobs as job_rows
from t2m.pagination import page_of, page_window

routes = web.RouteTableDef()


@routes.get("/jobs")
@docs(
    tags=["jobs"],
    summary="List your jobs, newest first",
    security=BEARER,
    responses={
        200: {"schema": envelope(JobListSchema, "JobList"), "description": "A page"},
        400: INVALID,
        401: UNAUTHORIZED,
    },
)
@request_schema(JobListQuerySchema, location="querystring")
async def list_jobs(request: web.Request) -> web.Response:
    principal = await require_user(request)
    query = request["data"]
    async with request.config_dict[DB_POOL].acquire() as conn:
        rows, total = await job_rows.list_jobs(
            conn,
            owner_id=None if principal.is_admin else principal.user_id,
            status=query.get("status"),
            job_type=query.get("type"),
            **page_window(query),
        )
    return ok(page_of([job_view(r) for r in rows], query, total))


@routes.get("/jobs/{job_id}")
@docs(
    tags=["jobs"],
    summary="Job status, progress, stage, timing, parameters, result and error",
    security=BEARER,
    responses={
        200: {"schema": envelope(JobSchema, "Job"), "description": "The job"},
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
async def get_job(request: web.Request) -> web.Response:
    principal = await require_user(request)
    row = await job_service.get_visible_job(request, principal, request.match_info["job_id"])
    return ok(job_view(row))


@routes.get("/jobs/{job_id}/logs")
@docs(
    tags=["jobs"],
    summary="The job's log, oldest first",
    security=BEARER,
    responses={
        200: {"schema": envelope(JobLogsSchema, "JobLogs"), "description": "Log entries"},
        400: INVALID,
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
@request_schema(JobLogsQuerySchema, location="querystring")
async def job_logs(request: web.Request) -> web.Response:
    principal = await require_user(request)
    row = await job_service.get_visible_job(request, principal, request.match_info["job_id"])
    query = request["data"]
    async with request.config_dict[DB_POOL].acquire() as conn:
        entries, total = await job_rows.job_logs(
            conn, row["id"], level=query.get("level"), limit=query["limit"], offset=query["offset"]
        )
    return ok(
        {
            "logs": [
                {
                    "timestamp": e["ts"],
                    "level": e["level"],
                    "message": e["message"],
                    "details": e["details"],
                }
                for e in entries
            ],
            "total_logs": total,
            "has_more": query["offset"] + len(entries) < total,
        }
    )


@routes.post("/jobs/{job_id}/cancel")
@docs(
    tags=["jobs"],
    summary="Cancel a queued or running job (a running render stops within seconds)",
    security=BEARER,
    responses={
        200: {"schema": envelope(JobSchema, "CancelledJob"), "description": "Cancelled"},
        401: UNAUTHORIZED,
        404: NOT_FOUND,
        409: error_doc("The job has already finished (CONFLICT)"),
    },
)
async def cancel_job(request: web.Request) -> web.Response:
    principal = await require_user(request)
    row = await job_service.cancel_visible_job(request, principal, request.match_info["job_id"])
    return ok(job_view(row), "Job cancelled")


@routes.delete("/jobs/{job_id}")
@docs(
    tags=["jobs"],
    summary="Delete a job and its outputs",
    security=BEARER,
    responses={200: {"description": "Deleted"}, 401: UNAUTHORIZED, 404: NOT_FOUND},
)
async def delete_job(request: web.Request) -> web.Response:
    principal = await require_user(request)
    job_id = request.match_info["job_id"]
    await job_service.delete_visible_job(request, principal, job_id)
    return ok({"id": job_id, "deleted": True}, "Job deleted")
