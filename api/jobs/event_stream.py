"""Serve one job's events as Server-Sent Events: authorise, snapshot, replay, follow.

A fresh connection gets a ``snapshot`` (the job as ``GET /jobs/{id}`` shows
it) whose id is the newest event it already reflects, then every later event.
A resuming one (``Last-Event-ID``) gets every kept event after that id, or a
fresh snapshot when the history no longer reaches back that far.  The stream
ends after the ``end`` event.  Workers publish after they commit, so the row
read for a snapshot is never behind the events that follow it: the client may
see a state twice, never miss one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import redis.exceptions
from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from api.auth.authn import require_user
from api.jobs import service as job_service
from api.jobs.event_hub import JOB_EVENT_HUB
from api.jobs.views import job_view
from api.keys import DB_POOL, REDIS, SETTINGS
from api.responses import dumps_json
from db import jobs as job_rows
from db import users as user_rows
from t2m.errors import AuthInvalid, NotFound, ValidationFailed
from t2m.ids import is_id
from t2m.job_events import END, FINISHED, JobEvents
from t2m.settings import Settings
from t2m.tokens import decode_token, issue_token

log = logging.getLogger(__name__)

EVENTS_TOKEN_TTL_S = 60
# How long a quiet stream waits for the hub before looking again whether its
# client is still there (aiohttp does not cancel a handler whose client left).
WAIT_S = 2.5
# How often an idle stream re-reads the job row: a job finished by a path that
# publishes nothing (the stuck-job reaper) still gets its ``end``.
STATUS_CHECK_S = 5.0
PING_S = 15.0
LAST_EVENT_HEADER = "Last-Event-ID"


def job_events(request: web.Request) -> JobEvents:
    return JobEvents(request.config_dict[REDIS], request.config_dict[SETTINGS])


def issue_events_token(
    settings: Settings, *, user_id: str, role: str, job_id: str, generation: int
) -> str:
    """A token for one job's stream, at the user's token generation (like
    access tokens): ``logout-all`` and a password change end it at once."""
    return issue_token(
        secret=settings.jwt_secret,
        issuer=settings.jwt_issuer,
        subject=user_id,
        role=role,
        kind="events",
        ttl_s=EVENTS_TOKEN_TTL_S,
        extra_claims={"job": job_id, "gen": generation},
    ).token


def _not_found(job_id: str) -> NotFound:
    return NotFound(
        "Job not found", f"Job with ID '{job_id}' does not exist or you don't have access"
    )


async def authorised_job(request: web.Request, job_id: str, token: str | None) -> asyncpg.Record:
    """The job, if the caller may follow it: a bearer access token with the
    ownership rules of ``GET /jobs/{id}``, or an events token minted for it."""
    if token is None or "Authorization" in request.headers:
        principal = await require_user(request)
        return await job_service.get_visible_job(request, principal, job_id)
    settings = request.config_dict[SETTINGS]
    claims = decode_token(
        token, secret=settings.jwt_secret, issuer=settings.jwt_issuer, kind="events"
    )
    if claims.get("job") != job_id or not is_id(job_id, "job"):
        raise _not_found(job_id)
    async with request.config_dict[DB_POOL].acquire() as conn:
        user = await user_rows.user_by_id(conn, claims["sub"])
        if user is None or not user["is_active"]:
            raise AuthInvalid("Token subject no longer exists")
        # Tokens without a generation predate generations: generation 0.
        if claims.get("gen", 0) != user["token_generation"]:
            raise AuthInvalid("Token has been revoked")
        row = await job_rows.visible_job(
            conn, job_id, viewer_id=user["id"], is_admin=user["role"] == "ADMIN"
        )
    if row is None:
        raise _not_found(job_id)
    return row


def requested_resume(request: web.Request, query: dict[str, Any]) -> int | None:
    """The id to resume after: the header (what EventSource sends) wins."""
    raw = (request.headers.get(LAST_EVENT_HEADER) or "").strip()
    if not raw:
        value: int | None = query.get("last_event_id")
        return value
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationFailed(
            "Request validation failed", {LAST_EVENT_HEADER: ["A non-negative event id"]}
        )
    return int(raw)


@dataclass(frozen=True)
class _Start:
    cursor: int  # events with a greater id follow
    snapshot: bool  # whether a snapshot comes first


async def _start(events: JobEvents, row: asyncpg.Record, resume_after: int | None) -> _Start:
    job_id = row["id"]
    end_id = await events.ensure_end(row) if row["status"] in FINISHED else None
    if resume_after is not None and await events.covers(job_id, resume_after):
        # A client that already saw the end gets it again, so it knows to stop.
        cursor = resume_after if end_id is None else min(resume_after, end_id - 1)
        return _Start(cursor, snapshot=False)
    # The newest id is read before the row the snapshot shows (in _follow),
    # and events are appended after their rows commit: nothing falls between.
    return _Start(end_id - 1 if end_id is not None else await events.last_id(job_id), snapshot=True)


async def stream_job(
    request: web.Request, row: asyncpg.Record, resume_after: int | None
) -> EventSourceResponse:
    """Answer with the event stream of ``row`` (already authorised)."""
    events = job_events(request)
    start = await _start(events, row, resume_after)  # Redis errors here are a 503
    async with sse_response(request, ping_interval=PING_S) as response:
        try:
            await _follow(request, response, events, row, start)
        except (ConnectionResetError, TimeoutError):
            pass  # the client went away or stalled; it resumes with Last-Event-ID
        except redis.exceptions.RedisError as exc:
            # Headers are sent: no error envelope now.  Closing makes the
            # client reconnect and resume, by then against a Redis that answers.
            log.warning("job %s: event stream interrupted: %r", row["id"], exc)
    return response


async def _follow(
    request: web.Request,
    response: EventSourceResponse,
    events: JobEvents,
    row: asyncpg.Record,
    start: _Start,
) -> None:
    pool = request.config_dict[DB_POOL]
    job_id = row["id"]
    cursor = start.cursor
    if start.snapshot:
        async with pool.acquire() as conn:
            fresh = await job_rows.job_by_id(conn, job_id)
        await response.send(dumps_json(job_view(fresh or row)), id=str(cursor), event="snapshot")
    checked = time.monotonic()
    async with request.config_dict[JOB_EVENT_HUB].follow(job_id, cursor) as watch:
        while _connected(request, response):
            watch.changed.clear()  # before the read: an entry landing after it sets it again
            batch = await events.read_after(job_id, cursor, block_ms=None)
            for event in batch:
                await response.send(event.encoded_data(), id=str(event.id), event=event.type)
                cursor = event.id
                if event.type == END:
                    return
            if batch:
                continue
            await watch.wait(WAIT_S)
            if time.monotonic() - checked >= STATUS_CHECK_S:
                checked = time.monotonic()
                async with pool.acquire() as conn:
                    current = await job_rows.job_by_id(conn, job_id)
                if current is None:
                    return  # deleted: nothing more will happen
                if current["status"] in FINISHED:
                    await events.ensure_end(current)


def _connected(request: web.Request, response: EventSourceResponse) -> bool:
    # aiohttp does not cancel a handler whose client left; look before each wait.
    transport = request.transport
    return transport is not None and not transport.is_closing() and response.is_connected()
