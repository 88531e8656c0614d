"""Feedback validation, logged recommendations and the metrics endpoint."""

from __future__ import annotations

import pytest

from api.recommendations.scorer import SCORER_CACHE
from tests.api.files_helpers import upload
from tests.support.media import png_bytes


async def _content(
    client, user, db, *, tags: str = "beach sunset ocean", duration: float | None = None
):
    data = await upload(
        client, user, png_bytes(), "beach.png", title="Sunset at the beach", tags=tags
    )
    if duration is not None:
        async with db.acquire() as conn:
            await conn.execute(
                "UPDATE files SET metadata = jsonb_build_object('duration', $2::float)"
                " WHERE id = $1",
                data["id"],
                duration,
            )
    return data["id"]


async def test_recommendations_are_logged_with_propensities(client, make_user, db):
    user = await make_user()
    content_id = await _content(client, user, db)
    await upload(
        client, user, png_bytes(color=(9, 8, 7)), "x.png", tags="mountain forest river snow"
    )
    response = await client.get(
        f"/api/v1/files/{content_id}/recommended-tags?k=3", headers=user.headers
    )
    assert response.status == 200, await response.text()
    body = (await response.json())["data"]
    assert body["model_version"] == 0  # cold start before any training
    assert 1 <= len(body["tags"]) <= 3
    shown = [t["tag"] for t in body["tags"]]
    assert not set(shown) & {"beach", "sunset", "ocean"}  # not the tags it already has
    assert all(0 < t["propensity"] <= 1 for t in body["tags"])
    await client.app[SCORER_CACHE].decisions.flush()  # rows are written in batches
    async with db.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM recommendations WHERE id = $1", body["recommendation_id"]
        )
    assert list(row["tags"]) == shown
    assert len(row["propensities"]) == len(shown)
    assert set(shown) <= set(row["candidates"])

    root = await client.get(f"/recommend-tags/{content_id}", headers=user.headers)
    assert root.status == 200
    assert (await root.json())["recommendation_id"].startswith("rec_")


async def test_feedback_is_recorded_and_queued(client, make_user, db):
    user = await make_user()
    content_id = await _content(client, user, db, duration=30.0)
    await upload(client, user, png_bytes(color=(1, 8, 7)), "y.png", tags="holiday summer")
    rec = (
        await (
            await client.get(f"/api/v1/files/{content_id}/recommended-tags", headers=user.headers)
        ).json()
    )["data"]
    response = await client.post(
        "/api/v1/feedback",
        json={"content_id": content_id, "event_type": "view", "watch_time_ms": 15000},
        headers=user.headers,
    )
    assert response.status == 202, await response.text()
    tag = rec["tags"][0]["tag"]
    response = await client.post(
        "/feedback",
        json={
            "content_id": content_id,
            "user_id": "viewer-42",
            "event_type": "tag_accept",
            "tags": [tag],
            "recommendation_id": rec["recommendation_id"],
        },
        headers=user.headers,
    )
    assert response.status == 202
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event_type, viewer_ref, processed_at FROM feedback_events ORDER BY id"
        )
        # the accepting user's own vocabulary counts it
        accepted = await conn.fetchval(
            "SELECT accepts FROM user_tags WHERE tag = $1 AND owner_id = $2", tag, user.id
        )
    assert [r["event_type"] for r in rows] == ["view", "tag_accept"]
    assert rows[1]["viewer_ref"] == "viewer-42"
    assert all(r["processed_at"] is None for r in rows)  # the worker does the learning
    assert accepted == 1

    metrics = await (await client.get("/metrics")).json()
    assert metrics["agent"]["decisions"] == 1
    assert metrics["agent"]["feedback_by_type"] == {"view": 1, "tag_accept": 1}
    assert metrics["agent"]["pending_events"] == 2
    assert metrics["system"]["contents"] == 2


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"event_type": "like"}, 400, "content_id"),
        ({"event_type": "love"}, 400, "event_type"),
        ({"event_type": "view", "watch_time_ms": -1}, 400, "watch_time_ms"),
        ({"event_type": "view", "watch_time_ms": 10 * 60 * 1000}, 400, "watch_time_ms"),
        ({"event_type": "tag_accept"}, 400, "tags"),
        ({"event_type": "tag_reject", "tags": ["  "]}, 400, "tags"),
        (
            {"event_type": "tag_accept", "tags": ["x"], "recommendation_id": "rec_nope"},
            400,
            "recommendation_id",
        ),
    ],
)
async def test_bad_feedback(client, make_user, db, body, status, field):
    user = await make_user()
    content_id = await _content(client, user, db, duration=60.0)
    payload = {"content_id": content_id, **body} if field != "content_id" else body
    response = await client.post("/api/v1/feedback", json=payload, headers=user.headers)
    assert response.status == status, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in error["details"]


async def test_feedback_and_recommendations_on_others_content_are_404(client, make_user, db):
    alice, bob = await make_user(), await make_user()
    content_id = await _content(client, alice, db)
    response = await client.post(
        "/api/v1/feedback",
        json={"content_id": content_id, "event_type": "like"},
        headers=bob.headers,
    )
    assert response.status == 404
    response = await client.get(f"/api/v1/files/{content_id}/recommended-tags", headers=bob.headers)
    assert response.status == 404
    for k in ("0", "21", "x"):
        response = await client.get(
            f"/api/v1/files/{content_id}/recommended-tags?k={k}", headers=alice.headers
        )
        assert response.status == 400
