"""Record viewer feedback (the updater learns from it in a worker)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from api.auth.authn import Principal
from api.cache.glue import after_write
from api.files import service as file_service
from api.keys import DB_POOL, ENQUEUER, REDIS, SETTINGS
from api.recommendations.scorer import SCORER_CACHE
from db import recommender as rec_rows
from recommender.features import normalize_tag
from t2m.errors import ServiceUnavailable, ValidationFailed
from t2m.queues import UPDATE_RECOMMENDER
from t2m.redis_client import redis_key

log = logging.getLogger(__name__)

# A view may run a little past the end (players report late); beyond this it
# is not a watch time of this content.
WATCH_SLACK = 1.1
WATCH_GRACE_MS = 5000
UPDATE_WINDOW_MS = 1000


async def record_feedback(
    request: web.Request, principal: Principal, data: dict[str, Any], *, viewer_ref: str | None
) -> int:
    row = await file_service.get_visible_file(request, principal, data["content_id"])
    watch = data.get("watch_time_ms")
    duration = (row["metadata"] or {}).get("duration")
    if watch is not None and duration:
        limit = int(float(duration) * 1000 * WATCH_SLACK + WATCH_GRACE_MS)
        if watch > limit:
            raise ValidationFailed(
                "Request validation failed",
                {"watch_time_ms": [f"Longer than the content ({float(duration):.1f} s)"]},
            )
    tags = [t for t in (normalize_tag(t) for t in data.get("tags", [])) if t]
    if data["event_type"] in ("tag_accept", "tag_reject") and not tags:
        raise ValidationFailed("Request validation failed", {"tags": ["No usable tag names"]})
    recommendation_id = data.get("recommendation_id")
    scorers = request.config_dict[SCORER_CACHE]
    if recommendation_id is not None and scorers.decisions.is_pending(recommendation_id):
        # answered before its batch was written: write it first, so the event finds it
        await scorers.decisions.flush()
    async with request.config_dict[DB_POOL].acquire() as conn, conn.transaction():
        if (
            recommendation_id is not None
            # an id issued for this content whose row another process has not written
            # yet is good: the updater waits for the row
            and not scorers.issued_here(recommendation_id, row["id"])
            and await rec_rows.recommendation_for(conn, recommendation_id, row["id"]) is None
        ):
            raise ValidationFailed(
                "Request validation failed",
                {"recommendation_id": ["No such recommendation for this content"]},
            )
        event_id = await rec_rows.insert_feedback(
            conn,
            content_id=row["id"],
            user_id=principal.user_id,
            viewer_ref=viewer_ref,
            event_type=data["event_type"],
            watch_time_ms=watch,
            tags=tags,
            recommendation_id=recommendation_id,
        )
        if data["event_type"] == "tag_accept":
            # the viewer's own vocabulary: a tag typed by one user never reaches another's
            await rec_rows.add_user_tags(conn, principal.user_id, tags, accepted=True)
        elif data["event_type"] == "tag_reject":
            await rec_rows.record_tag_rejects(conn, principal.user_id, tags)
    if data["event_type"] == "tag_accept":
        scorers.forget_user(principal.user_id)
    # The content owner's video statistics count this event.
    await after_write(request, row["owner_id"])
    await _schedule_update(request)
    return event_id


async def _schedule_update(request: web.Request) -> None:
    """Ask for one update per batching window, not one per event: the updater
    trains on everything pending, and each version it publishes costs a
    checkpoint."""
    settings = request.config_dict[SETTINGS]
    key = redis_key(settings, "rl_update", "scheduled")
    try:
        if await request.config_dict[REDIS].set(key, "1", nx=True, px=UPDATE_WINDOW_MS):
            await request.config_dict[ENQUEUER].send(UPDATE_RECOMMENDER, delay_ms=UPDATE_WINDOW_MS)
    except (ServiceUnavailable, RedisError):
        # The event is a row: the next scheduled update takes it.
        log.warning("could not schedule a recommender update; the event waits")
