"""Record viewer feedback (the updater learns from it in a worker)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from api import file_service
from api.authn import Principal
from api.keys import DB_POOL, ENQUEUER
from db import recommender as rec_rows
from recommender.features import normalize_tag
from t2m.errors import ServiceUnavailable, ValidationFailed
from t2m.queues import UPDATE_RECOMMENDER

log = logging.getLogger(__name__)

# A view may run a little past the end (players report late); beyond this it
# is not a watch time of this content.
WATCH_SLACK = 1.1
WATCH_GRACE_MS = 5000


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
    async with request.config_dict[DB_POOL].acquire() as conn, conn.transaction():
        recommendation_id = data.get("recommendation_id")
        if recommendation_id is not None and (
            await rec_rows.recommendation_for(conn, recommendation_id, row["id"]) is None
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
            await rec_rows.add_tags(conn, tags, source="accepted")
        elif data["event_type"] == "tag_reject":
            await rec_rows.record_tag_rejects(conn, tags)
    try:
        await request.config_dict[ENQUEUER].send(UPDATE_RECOMMENDER)
    except ServiceUnavailable:
        # The event is a row: the next update (or the scheduled one) takes it.
        log.warning("could not enqueue a recommender update; event %s waits", event_id)
    return event_id
