"""Video statistics and streaming performance reports."""

from __future__ import annotations

import asyncio

from tests.api.files_helpers import upload
from tests.support.media import png_bytes


async def _job(
    db, owner_id: str, job_id: str, status: str, duration: float, render_s: float
) -> None:
    async with db.acquire() as conn:
        await conn.execute(
            """
            INSERT INTO jobs (id, owner_id, status, output_file_id, result, render_seconds)
            VALUES ($1, $2, $3, $4, jsonb_build_object('duration', $5::float), $6)
            """,
            job_id,
            owner_id,
            status,
            "file_" + job_id[4:],
            duration,
            render_s,
        )


async def test_video_stats_counts_own_jobs_and_engagement(client, make_user, db):
    alice, bob = await make_user(), await make_user()
    admin = await make_user("ADMIN", verified=True)
    await _job(db, alice.id, "job_" + "a" * 24, "completed", 10.0, 2.0)
    await _job(db, alice.id, "job_" + "b" * 24, "completed", 20.0, 4.0)
    await _job(db, alice.id, "job_" + "c" * 24, "failed", 0.0, 0.0)
    await _job(db, bob.id, "job_" + "d" * 24, "completed", 30.0, 6.0)
    video = await upload(client, alice, png_bytes(), "v.png")
    async with db.acquire() as conn:
        await conn.execute("UPDATE files SET source = 'generated' WHERE id = $1", video["id"])
    for event in ("view", "view", "like", "share"):
        response = await client.post(
            "/api/v1/feedback",
            json={"content_id": video["id"], "event_type": event},
            headers=alice.headers,
        )
        assert response.status == 202

    stats = await (await client.get("/reports/video-stats", headers=alice.headers)).json()
    assert stats["jobs_by_status"] == {"completed": 2, "failed": 1}
    assert stats["videos"] == 2
    assert stats["total_duration_s"] == 30.0
    assert stats["mean_duration_s"] == 15.0
    assert stats["render_seconds"]["p50"] == 3.0
    assert stats["render_seconds"]["max"] == 4.0
    assert (stats["views"], stats["likes"], stats["shares"]) == (2, 1, 1)

    everyone = await (await client.get("/reports/video-stats", headers=admin.headers)).json()
    assert everyone["videos"] == 3
    assert (await client.get("/reports/video-stats")).status == 401


async def test_streaming_performance_by_quality(client, make_user):
    user = await make_user()
    file_id = (await upload(client, user, png_bytes()))["id"]
    for _ in range(3):
        response = await client.get(
            f"/api/v1/files/{file_id}/stream", headers={**user.headers, "Range": "bytes=0-9"}
        )
        await response.read()
    for _ in range(50):  # analytics are written just after each response
        report = await (
            await client.get("/streaming-performance?hours=1", headers=user.headers)
        ).json()
        if report["sessions"] == 3:
            break
        await asyncio.sleep(0.05)
    assert report["sessions"] == 3
    assert report["bytes_served"] == 30
    original = report["by_quality"]["original"]
    assert original["sessions"] == 3
    assert original["completed"] == 3
    assert original["p95_duration_ms"] is not None
    assert original["mean_throughput_bps"] > 0

    other = await make_user()
    empty = await (await client.get("/streaming-performance", headers=other.headers)).json()
    assert empty["sessions"] == 0
    response = await client.get("/streaming-performance?hours=0", headers=user.headers)
    assert response.status == 400
    assert "hours" in (await response.json())["error"]["details"]
