"""Video jobs: submit, look up, cancel, delete (shared by both API surfaces)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import asyncpg
from aiohttp import web

from api.auth.authn import Principal
from api.cache.glue import after_write
from api.files.hls import delete_tree
from api.jobs.script_scenes import check_narration, check_recordings, scenes_to_script
from api.keys import DB_POOL, ENQUEUER, REDIS, SETTINGS, STORAGE
from api.quotas import check_job_quota
from api.recommendations.scorer import SCORER_CACHE
from api.webhooks import service as webhook_service
from api.webhooks.service import WEBHOOK_SERVICE
from db import files as file_rows
from db import jobs as job_rows
from db import recommender as rec_rows
from db import webhooks as webhook_rows
from pipeline.stages.render_budget import check_render_budget, top_pixels
from pipeline.stages.script import Script, ScriptError, parse_script
from recommender.features import normalize_tag
from t2m.errors import Conflict, NotFound, QuotaExceeded, ServiceUnavailable, ValidationFailed
from t2m.ids import is_id, new_id
from t2m.job_events import END, JobEvents, end_data
from t2m.job_status import JobStatus
from t2m.queues import PARSE_SCRIPT
from t2m.webhook_events import JOB_CANCELLED, JOB_EVENTS

log = logging.getLogger(__name__)

ASSET_TYPES = ("image", "video", "audio")


def output_file_id(job_id: str) -> str:
    """The id the finished video's file record will have: derived, so a
    redelivered final stage finds the same record instead of making another."""
    return "file_" + hashlib.sha256(job_id.encode()).hexdigest()[:24]


async def _check_assets(
    conn: asyncpg.Connection, principal: Principal, asset_ids: list[str]
) -> dict[str, str]:
    """Map each asset id to its file type; every one must be the caller's media file."""
    kinds: dict[str, str] = {}
    problems: list[str] = []
    for asset_id in asset_ids:
        row = (
            await file_rows.visible_file(
                conn, asset_id, viewer_id=principal.user_id, is_admin=principal.is_admin
            )
            if is_id(asset_id, "file")
            else None
        )
        if row is None:
            problems.append(f"{asset_id}: no such file")
        elif row["file_type"] not in ASSET_TYPES:
            problems.append(f"{asset_id}: a {row['file_type']} cannot be a background or music")
        else:
            kinds[asset_id] = row["file_type"]
    if problems:
        raise ValidationFailed("Request validation failed", {"assets": problems})
    return kinds


def _check_render_memory(script: str, params: Mapping[str, Any], budget_mb: float) -> Script | None:
    """Refuse, before anything is stored, a script whose render would need more
    memory than RENDER_MEMORY_BUDGET_MB (see pipeline.stages.render_budget).
    A script that does not parse is left to the parse stage, which reports it
    with its line number as it always has.  Narration options are checked
    here too (unknown voices, [duration]s too short for their speech)."""
    try:
        parsed = parse_script(script.encode("utf-8"))
    except ScriptError:
        return None
    check_narration(parsed, params)
    check_render_budget(
        [scene.background.asset_id if scene.background else None for scene in parsed.scenes],
        top_pixels(str(params.get("quality", "720p")), str(params.get("aspect", "16:9"))),
        budget_mb,
    )
    return parsed


async def submit_video_job(
    request: web.Request,
    principal: Principal,
    params: dict[str, Any],
    *,
    idempotency_key: str | None,
) -> tuple[asyncpg.Record, bool]:
    """Record and enqueue a job; returns (job, created).  A repeated idempotency
    key returns the first job instead of starting a second render."""
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 200):
        raise ValidationFailed(
            "Request validation failed", {"Idempotency-Key": ["1 to 200 characters"]}
        )
    app = request.config_dict
    scenes = params.pop("scenes", None)
    if scenes:
        script = scenes_to_script(scenes)
    else:
        script = params.pop("script", None) or params.pop("prompt")
    params.pop("script", None)
    params.pop("prompt", None)
    parsed = _check_render_memory(script, params, app[SETTINGS].render_memory_budget_mb)
    asset_ids = list(
        dict.fromkeys(
            [*params.get("assets", []), *([params["music"]] if params.get("music") else [])]
        )
    )
    async with app[DB_POOL].acquire() as conn:
        if idempotency_key:
            existing = await job_rows.job_by_idempotency_key(
                conn, principal.user_id, idempotency_key
            )
            if existing is not None:
                return existing, False
        params["asset_types"] = await _check_assets(conn, principal, asset_ids)
        if parsed is not None and params.get("narration", "auto") != "none":
            await check_recordings(conn, principal.user_id, parsed)
        await rec_rows.add_user_tags(
            conn, principal.user_id, [n for n in map(normalize_tag, params.get("tags") or []) if n]
        )
        request.config_dict[SCORER_CACHE].forget_user(principal.user_id)
    if params.get("webhook_url"):
        await request.config_dict[WEBHOOK_SERVICE].check_target_url(
            params["webhook_url"], field="webhook_url"
        )
    job_id = new_id("job")
    script_key = f"scripts/{job_id}.txt"
    await app[STORAGE].put_bytes(script_key, script.encode("utf-8"), content_type="text/plain")
    webhook_url = params.pop("webhook_url", None)
    async with app[DB_POOL].acquire() as conn, conn.transaction():
        try:
            # Takes the owner's row lock until the commit: parallel
            # submissions are counted one after the other.
            await check_job_quota(
                conn, app[SETTINGS], principal.user_id, target_duration=params.get("duration")
            )
        except QuotaExceeded:
            await app[STORAGE].delete(script_key)
            raise
        row = await job_rows.insert_job(
            conn,
            id=job_id,
            owner_id=principal.user_id,
            parameters=params,
            script_key=script_key,
            output_file_id=output_file_id(job_id),
            idempotency_key=idempotency_key,
            webhook_url=webhook_url,
        )
        if row is None:  # a concurrent request with the same key won the race
            await app[STORAGE].delete(script_key)
            assert idempotency_key is not None
            existing = await job_rows.job_by_idempotency_key(
                conn, principal.user_id, idempotency_key
            )
            assert existing is not None
            return existing, False
        await job_rows.add_log(
            conn, job_id, "INFO", "Job queued", {"step": "queued", "progress": 0}
        )
        if webhook_url:
            # The job's webhook_url is a one-off subscription to all its job.*
            # events, with its own secret (in the generate response).
            await webhook_rows.insert_webhook(
                conn,
                owner_id=principal.user_id,
                url=webhook_url,
                events=JOB_EVENTS,
                secret=webhook_service.new_secret(),
                job_id=job_id,
            )
    await after_write(request, principal.user_id)
    try:
        await app[ENQUEUER].send(PARSE_SCRIPT, job_id)
    except ServiceUnavailable:
        # The row is the truth: the sweeper re-enqueues queued jobs it finds
        # without a live message.
        log.warning("could not enqueue job %s; left queued", job_id)
    return row, True


async def get_visible_job(
    request: web.Request, principal: Principal, job_id: str
) -> asyncpg.Record:
    row = None
    if is_id(job_id, "job"):
        async with request.config_dict[DB_POOL].acquire() as conn:
            row = await job_rows.visible_job(
                conn, job_id, viewer_id=principal.user_id, is_admin=principal.is_admin
            )
    if row is None:
        raise NotFound(
            "Job not found", f"Job with ID '{job_id}' does not exist or you don't have access"
        )
    return row


async def cancel_visible_job(
    request: web.Request, principal: Principal, job_id: str
) -> asyncpg.Record:
    row = await get_visible_job(request, principal, job_id)
    base_url = request.config_dict[SETTINGS].public_base_url
    async with request.config_dict[DB_POOL].acquire() as conn:
        async with conn.transaction():
            if not await job_rows.cancel_job(conn, row["id"]):
                raise Conflict(
                    "The job has already finished",
                    f"Job {row['id']} is {row['status']}; "
                    "only queued or processing jobs can be cancelled",
                )
            await job_rows.add_log(
                conn, row["id"], "WARNING", "Cancel requested", {"step": "cancel"}
            )
            deliveries = await webhook_rows.emit_job_event(
                conn, row["id"], JOB_CANCELLED, public_base_url=base_url
            )
        fresh = await job_rows.job_by_id(conn, row["id"])
    await after_write(request, row["owner_id"])
    await request.config_dict[WEBHOOK_SERVICE].send_deliveries(deliveries)
    assert fresh is not None
    await _publish_cancelled(request, fresh)
    return fresh


async def _publish_cancelled(request: web.Request, row: Mapping[str, Any]) -> None:
    """Tell live followers (after the commit, like every job event)."""
    events = JobEvents(request.config_dict[REDIS], request.config_dict[SETTINGS])
    await events.publish_log(row["id"], "WARNING", "Cancel requested", "cancel")
    await events.publish(row["id"], END, end_data(row))


async def delete_visible_job(request: web.Request, principal: Principal, job_id: str) -> None:
    """Delete a job and its outputs (a running job is cancelled first)."""
    row = await get_visible_job(request, principal, job_id)
    storage = request.config_dict[STORAGE]
    deliveries: list[str] = []
    cancelled = False
    async with request.config_dict[DB_POOL].acquire() as conn:
        async with conn.transaction():
            if await job_rows.cancel_job(conn, row["id"]):
                cancelled = True
                deliveries = await webhook_rows.emit_job_event(
                    conn,
                    row["id"],
                    JOB_CANCELLED,
                    public_base_url=request.config_dict[SETTINGS].public_base_url,
                )
            await job_rows.soft_delete_job(conn, row["id"])
            await file_rows.soft_delete_file(conn, row["output_file_id"])
        # Bytes another file record still shares (identical content) stay;
        # unreferenced blobs are purged by maintenance after a grace period.
        keep = await file_rows.referenced_keys(conn, f"videos/{row['id']}/")
    await after_write(request, row["owner_id"])
    await request.config_dict[WEBHOOK_SERVICE].send_deliveries(deliveries)
    if cancelled:
        await _publish_cancelled(request, {**dict(row), "status": JobStatus.CANCELLED})
    if row["output_file_id"]:  # its video's signed HLS segments stop with it
        await delete_tree(storage, row["output_file_id"])
    for prefix in (f"videos/{row['id']}/", f"storyboards/{row['id']}", f"scripts/{row['id']}"):
        async for info in storage.list(prefix):
            if info.key not in keep:
                await storage.delete(info.key)
