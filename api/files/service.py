"""File operations shared by /api/v1/files and the root-path aliases."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from api.auth.authn import Principal
from api.cache.glue import after_write
from api.files.hls import delete_tree
from api.files.uploads import FormLimits, ReceivedFile, discard, receive_form, store_upload
from api.keys import DB_POOL, ENQUEUER, SETTINGS, STORAGE
from api.quotas import UploadQuota
from api.recommendations.scorer import SCORER_CACHE
from db import files as file_rows
from db import recommender as rec_rows
from pipeline.stages.media_types import check_declared_type
from recommender.features import normalize_tag
from t2m.errors import NotFound, ServiceUnavailable, ValidationFailed
from t2m.filenames import validate_subdirectory
from t2m.ids import is_id
from t2m.queues import PROCESS_UPLOAD

log = logging.getLogger(__name__)

MAX_BATCH_FILES = 20
MAX_TAGS = 20


@dataclass(frozen=True)
class UploadOptions:
    file_type: str | None
    subdirectory: str | None
    title: str | None
    description: str | None
    tags: list[str]


def _options(fields: dict[str, str]) -> UploadOptions:
    errors: dict[str, list[str]] = {}
    description = fields.get("description") or None
    title = fields.get("title") or None
    if description is not None and len(description) > 5000:
        errors["description"] = ["At most 5000 characters"]
    if title is not None and len(title) > 300:
        errors["title"] = ["At most 300 characters"]
    tags = [
        t.strip().lower() for t in fields.get("tags", "").replace(",", " ").split() if t.strip()
    ]
    if len(tags) > MAX_TAGS or any(len(t) > 50 for t in tags):
        errors["tags"] = [f"At most {MAX_TAGS} tags of at most 50 characters"]
    subdirectory = None
    try:
        subdirectory = validate_subdirectory(fields.get("subdirectory")) or None
    except ValidationFailed as exc:
        errors.update(exc.details or {"subdirectory": [exc.message]})
    if errors:
        raise ValidationFailed("Request validation failed", errors)
    return UploadOptions(
        file_type=fields.get("file_type") or None,
        subdirectory=subdirectory,
        title=title,
        description=description,
        tags=list(dict.fromkeys(tags)),
    )


def _tag_names(tags: list[str]) -> list[str]:
    """Tags in the recommender's canonical form (the vocabulary stores them so)."""
    return [n for n in map(normalize_tag, tags) if n]


async def upload_files(
    request: web.Request, principal: Principal, *, file_fields: tuple[str, ...], max_files: int
) -> list[asyncpg.Record]:
    """Receive, validate, store and record the uploaded files; enqueue their processing.

    The owner's quota is reserved before and while the bytes stream in, and the
    reservation is released only once the file rows count the bytes instead.
    """
    app = request.config_dict
    quota = UploadQuota(app[DB_POOL], app[SETTINGS], principal.user_id)
    try:
        await quota.begin(request.content_length)
        return await _receive_and_record(request, principal, quota, file_fields, max_files)
    finally:
        await quota.release()


async def _receive_and_record(
    request: web.Request,
    principal: Principal,
    quota: UploadQuota,
    file_fields: tuple[str, ...],
    max_files: int,
) -> list[asyncpg.Record]:
    app = request.config_dict
    storage = app[STORAGE]
    settings = app[SETTINGS]
    limits = FormLimits(
        max_files=max_files,
        max_file_bytes=settings.max_upload_bytes,
        max_fields=settings.upload_max_fields,
        max_fields_bytes=settings.upload_max_fields_bytes,
    )
    form = await receive_form(request, storage, file_fields=file_fields, limits=limits, meter=quota)
    try:
        if not form.files:
            raise ValidationFailed(
                "No file in the request", {file_fields[0]: ["Missing data for required field."]}
            )
        options = _options(form.fields)
        file_types = [check_declared_type(options.file_type, f.media).file_type for f in form.files]
    except BaseException:
        await discard(storage, form.files)
        raise
    rows = []
    pending: list[ReceivedFile] = list(form.files)
    try:
        for received, file_type in zip(form.files, file_types, strict=True):
            async with app[DB_POOL].acquire() as conn:
                await rec_rows.add_user_tags(conn, principal.user_id, _tag_names(options.tags))
                app[SCORER_CACHE].forget_user(principal.user_id)
                rows.append(
                    await store_upload(
                        conn,
                        storage,
                        received,
                        owner_id=principal.user_id,
                        file_type=file_type,
                        title=options.title,
                        description=options.description,
                        subdirectory=options.subdirectory,
                        tags=options.tags,
                    )
                )
            pending.remove(received)
    finally:
        await discard(storage, pending)
        if rows:  # recorded, even if a later file of the batch failed
            await after_write(request, principal.user_id)
    for row in rows:
        try:
            await app[ENQUEUER].send(PROCESS_UPLOAD, row["id"])
        except ServiceUnavailable:
            # The record says "pending"; the sweeper re-enqueues it later.
            log.warning("could not enqueue processing of %s; left pending", row["id"])
    return rows


async def get_visible_file(
    request: web.Request, principal: Principal, file_id: str
) -> asyncpg.Record:
    if not is_id(file_id, "file"):
        raise NotFound(
            "File not found", f"File with ID '{file_id}' does not exist or you don't have access"
        )
    async with request.config_dict[DB_POOL].acquire() as conn:
        row = await file_rows.visible_file(
            conn, file_id, viewer_id=principal.user_id, is_admin=principal.is_admin
        )
    if row is None:
        raise NotFound(
            "File not found", f"File with ID '{file_id}' does not exist or you don't have access"
        )
    return row


async def delete_file(request: web.Request, principal: Principal, file_id: str) -> None:
    row = await get_visible_file(request, principal, file_id)
    async with request.config_dict[DB_POOL].acquire() as conn, conn.transaction():
        await file_rows.soft_delete_file(conn, row["id"])
    # Signed HLS segments are verified by their HMAC alone: removing the tree
    # is what stops them (playlists already stop with the row).
    await delete_tree(request.config_dict[STORAGE], row["id"])
    await after_write(request, row["owner_id"])


async def cleanup_files(
    request: web.Request,
    principal: Principal,
    *,
    older_than: datetime | None,
    file_type: str | None,
    dry_run: bool,
) -> dict[str, Any]:
    async with request.config_dict[DB_POOL].acquire() as conn:
        matches = await file_rows.files_matching_cleanup(
            conn,
            owner_id=principal.user_id,
            older_than=older_than,
            file_type=file_type,
        )
        if not dry_run:
            async with conn.transaction():
                for match in matches:
                    await file_rows.soft_delete_file(conn, match["id"])
    if matches and not dry_run:
        for match in matches:
            await delete_tree(request.config_dict[STORAGE], match["id"])
        await after_write(request, principal.user_id)
    return {
        "dry_run": dry_run,
        "matched": len(matches),
        "deleted": 0 if dry_run else len(matches),
        "bytes": sum(m["size"] for m in matches),
        "files": [
            {
                "id": m["id"],
                "filename": m["filename"],
                "file_type": m["file_type"],
                "size": m["size"],
            }
            for m in matches
        ],
    }
