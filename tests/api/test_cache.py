"""The read-through cache: hits, invalidation after every kind of write,
coalescing of concurrent identical reads, and its admin endpoints."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from redis.asyncio import Redis

from api.cache.glue import CACHE
from db import jobs as job_rows
from pipeline.maintenance.context import MaintenanceContext
from pipeline.maintenance.reaper import reap_stuck_jobs
from t2m.broker import DramatiqKeys
from t2m.cache import CacheKey, ReadThroughCache
from t2m.cache_generation import bump_generations
from t2m.embedded import free_port
from t2m.redis_client import create_redis
from t2m.settings import Settings
from t2m.storage import build_storage
from tests.api.files_helpers import upload
from tests.pipeline.workers.conftest import start_worker  # noqa: F401 (a fixture)
from tests.support.media import jpeg_bytes, png_bytes
from tests.support.polling import until


async def _get(client: Any, path: str, user: Any = None) -> tuple[int, str, Any]:
    response = await client.get(path, headers=user.headers if user else {})
    return response.status, response.headers.get("X-Cache", ""), await response.json()


# How long a read may keep showing the state from before a worker's commit:
# the worker bumps the generation right after committing.  Far below every
# entry's TTL (60 s and more), so an entry nothing retired fails the wait.
BUMP_WINDOW_S = 10.0


async def _read_until(
    client: Any, path: str, user: Any, shows: Callable[[Any], bool], what: str
) -> tuple[str, Any]:
    """Read ``path`` until its body ``shows`` what a worker has committed
    (bounded by BUMP_WINDOW_S); the outcome and body of that read."""
    seen: list[tuple[str, Any]] = []

    async def shown() -> bool:
        _, outcome, body = await _get(client, path, user)
        seen.append((outcome, body))
        return shows(body)

    await until(shown, what, timeout_s=BUMP_WINDOW_S)
    return seen[-1]


async def test_file_details_and_listings_are_cached_until_the_owner_writes(client, make_user):
    alice, bob = await make_user(), await make_user()
    first = await upload(client, alice, png_bytes(), "first.png")
    path = f"/api/v1/files/{first['id']}"

    status, outcome, body = await _get(client, path, alice)
    assert (status, outcome) == (200, "MISS")
    assert body["data"]["filename"] == "first.png"
    status, outcome, again = await _get(client, path, alice)
    assert (status, outcome) == (200, "HIT")
    assert again == body
    assert (await _get(client, "/api/v1/files", alice))[1] == "MISS"
    assert (await _get(client, "/api/v1/files", alice))[1] == "HIT"
    assert (await _get(client, "/api/v1/files", bob))[1] == "MISS"
    assert (await _get(client, "/api/v1/files", bob))[1] == "HIT"

    # An upload: the listing shows it at once.
    second = await upload(client, alice, jpeg_bytes(), "second.jpg")
    _, outcome, listing = await _get(client, "/api/v1/files", alice)
    assert outcome == "MISS"
    assert [f["id"] for f in listing["data"]["items"]] == [second["id"], first["id"]]
    assert listing["data"]["pagination"]["total_items"] == 2
    # Bob's entries are his own: Alice's write did not retire them.
    assert (await _get(client, "/api/v1/files", bob))[1] == "HIT"

    # A delete: the details are gone and the listing no longer has it.
    response = await client.delete(path, headers=alice.headers)
    assert response.status == 200
    status, _, body = await _get(client, path, alice)
    assert status == 404
    assert body["error"]["code"] == "RESOURCE_NOT_FOUND"
    _, _, listing = await _get(client, "/api/v1/files", alice)
    assert [f["id"] for f in listing["data"]["items"]] == [second["id"]]


async def test_another_users_file_is_never_served_from_the_owners_entry(client, make_user):
    alice, mallory = await make_user(), await make_user()
    data = await upload(client, alice, png_bytes())
    path = f"/api/v1/files/{data['id']}"
    assert (await _get(client, path, alice))[:2] == (200, "MISS")
    assert (await _get(client, path, alice))[:2] == (200, "HIT")
    for _ in range(2):  # nothing cached for her: a 404 every time
        status, _, _ = await _get(client, path, mallory)
        assert status == 404
    status, _, _ = await _get(client, "/api/v1/files/not-an-id", alice)
    assert status == 404


async def test_admin_views_see_every_owners_write(client, make_user):
    admin, alice = await make_user("ADMIN"), await make_user()
    await upload(client, alice, png_bytes(), "one.png")
    _, outcome, listing = await _get(client, "/api/v1/files", admin)
    assert outcome == "MISS" and listing["data"]["pagination"]["total_items"] == 1
    assert (await _get(client, "/api/v1/files", admin))[1] == "HIT"
    await upload(client, alice, jpeg_bytes(), "two.jpg")
    _, outcome, listing = await _get(client, "/api/v1/files", admin)
    assert outcome == "MISS" and listing["data"]["pagination"]["total_items"] == 2


async def test_root_content_views_are_cached_and_invalidated(client, make_user):
    alice = await make_user()
    data = await upload(client, alice, png_bytes(), "root.png")
    path = f"/content/{data['id']}"
    status, outcome, body = await _get(client, path, alice)
    assert (status, outcome) == (200, "MISS") and body["content_id"] == data["id"]
    assert (await _get(client, path, alice))[1] == "HIT"
    assert (await _get(client, "/contents", alice))[2]["total"] == 1
    assert (await _get(client, "/contents", alice))[1] == "HIT"
    await client.delete(f"/api/v1/files/{data['id']}", headers=alice.headers)
    assert (await _get(client, path, alice))[0] == 404
    _, outcome, listing = await _get(client, "/contents", alice)
    assert outcome == "MISS" and listing["total"] == 0


async def test_a_worker_finishing_an_upload_shows_in_the_next_read(client, make_user, db, request):
    start = request.getfixturevalue("start_worker")
    alice = await make_user()
    data = await upload(client, alice, jpeg_bytes(320, 200), "photo.jpg")
    path = f"/api/v1/files/{data['id']}"
    _, _, before = await _get(client, path, alice)
    assert before["data"]["processing_status"] == "pending"
    assert (await _get(client, path, alice))[1] == "HIT"
    _, _, listing = await _get(client, "/api/v1/files", alice)
    assert listing["data"]["items"][0]["has_thumbnail"] is False

    start(["media"])

    async def status() -> str:
        async with db.acquire() as conn:
            return str(
                await conn.fetchval("SELECT processing_status FROM files WHERE id = $1", data["id"])
            )

    await until(lambda: _is(status, "completed"), "the upload processed")
    # The worker committed, then bumps: reads see the new state within moments,
    # and the first read that does is computed afresh.
    outcome, after = await _read_until(
        client,
        path,
        alice,
        lambda body: body["data"]["processing_status"] == "completed",
        "the processed upload in its details",
    )
    assert outcome == "MISS"
    assert after["data"]["processing_status"] == "completed"
    assert after["data"]["metadata"]["width"] == 320
    assert after["data"]["thumbnails"] == ["large", "medium", "small"]
    _, _, listing = await _get(client, "/api/v1/files", alice)
    assert listing["data"]["items"][0]["has_thumbnail"] is True


async def _video_stats(client: Any, user: Any) -> tuple[str, dict[str, Any]]:
    _, outcome, body = await _get(client, "/reports/video-stats", user)
    return outcome, body


async def _submit(client: Any, user: Any) -> str:
    response = await client.post(
        "/api/v1/videos/generate",
        json={"script": "One.\n\nTwo.", "quality": "480p"},
        headers=user.headers,
    )
    assert response.status == 202, await response.text()
    return str((await response.json())["data"]["id"])


async def test_job_state_changes_show_in_the_next_report(
    client, make_user, db, settings: Settings, request
):
    start = request.getfixturevalue("start_worker")
    alice = await make_user()
    assert (await _video_stats(client, alice))[0] == "MISS"
    outcome, stats = await _video_stats(client, alice)
    assert outcome == "HIT" and stats["jobs_by_status"] == {}
    await _get(client, "/reports/storyboard-stats")
    assert (await _get(client, "/reports/storyboard-stats"))[1] == "HIT"

    # A submitted job (an API write).
    stuck = await _submit(client, alice)
    outcome, stats = await _video_stats(client, alice)
    assert outcome == "MISS" and stats["jobs_by_status"] == {"queued": 1}
    assert (await _get(client, "/reports/storyboard-stats"))[2]["total_jobs"] == 1

    # The stuck-job reaper fails it (a maintenance write, outside the API).
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE jobs SET requeue_count = 9, updated_at = now() - interval '2 hours'"
            " WHERE id = $1",
            stuck,
        )
    redis = create_redis(settings)
    ctx = MaintenanceContext(db, settings, build_storage(settings), _no_send, redis)
    try:
        # Its message is lost too (as when Redis restarts empty): the reaper
        # leaves jobs whose message still waits in the broker.
        queue = DramatiqKeys.of(settings).ready("parse")
        await redis.delete(queue, f"{queue}.msgs")
        result = await reap_stuck_jobs(ctx, queued_after_s=60, max_requeues=1)
    finally:
        await redis.aclose()
    assert result["failed"] == [stuck]
    outcome, stats = await _video_stats(client, alice)
    assert outcome == "MISS" and stats["jobs_by_status"] == {"failed": 1}
    assert (await _video_stats(client, alice))[0] == "HIT"

    # A worker takes the next one (parse stage): processing.  Nothing serves
    # the stage after, so the job stays there.
    job_id = await _submit(client, alice)
    assert (await _video_stats(client, alice))[1]["jobs_by_status"] == {"failed": 1, "queued": 1}
    start(["parse"])

    async def job_status() -> str:
        async with db.acquire() as conn:
            return str(await job_rows.job_status(conn, job_id))

    await until(lambda: _is(job_status, "processing"), "the job taken")
    outcome, stats = await _read_until(
        client,
        "/reports/video-stats",
        alice,
        lambda body: "processing" in body["jobs_by_status"],
        "the processing job in the report",
    )
    assert outcome == "MISS" and stats["jobs_by_status"] == {"failed": 1, "processing": 1}


async def _is(value: Callable[[], Awaitable[str]], expected: str) -> bool:
    return await value() == expected


async def test_a_built_storyboard_shows_in_the_next_storyboard_stats(
    client, make_user, db, request
):
    start = request.getfixturevalue("start_worker")
    alice = await make_user()
    image = await upload(client, alice, png_bytes(), "background.png")
    response = await client.post(
        "/api/v1/videos/generate",
        json={
            "script": "One.\n\nTwo.",
            "quality": "480p",
            "assets": [image["id"]],
            "narration": "none",
        },
        headers=alice.headers,
    )
    assert response.status == 202, await response.text()
    job_id = (await response.json())["data"]["id"]

    async def current_stage() -> str:
        async with db.acquire() as conn:
            return str(await conn.fetchval("SELECT current_stage FROM jobs WHERE id = $1", job_id))

    # The storyboard stage looks its asset up in files: holding that table
    # stops the stage after it has started (and bumped), before its summary.
    async with db.acquire() as locker:
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute("LOCK TABLE files IN ACCESS EXCLUSIVE MODE")
        start(["parse", "storyboard"])
        await until(lambda: _is(current_stage, "storyboard"), "the storyboard stage started")
        await until(lambda: _waiting_on(db, "%FROM files f%", 1), "the stage waiting on files")
        _, _, stats = await _get(client, "/reports/storyboard-stats")
        assert stats["total_jobs"] == 1 and stats["total_storyboards"] == 0
        assert (await _get(client, "/reports/storyboard-stats"))[1] == "HIT"
        await transaction.rollback()

    async def summarised() -> bool:
        async with db.acquire() as conn:
            return bool(
                await conn.fetchval(
                    "SELECT storyboard_summary IS NOT NULL FROM jobs WHERE id = $1", job_id
                )
            )

    await until(summarised, "the storyboard summary written")
    outcome, stats = await _read_until(
        client,
        "/reports/storyboard-stats",
        None,
        lambda body: body["total_storyboards"] == 1,
        "the storyboard in the storyboard stats",
    )
    assert outcome == "MISS" and stats["mean_scenes"] is not None


async def _no_send(*_: Any) -> str:
    return "unused"


async def test_cancel_and_feedback_show_in_the_next_report(client, make_user, db):
    alice = await make_user()
    response = await client.post(
        "/api/v1/videos/generate", json={"script": "Hello."}, headers=alice.headers
    )
    job_id = (await response.json())["data"]["id"]
    assert (await _video_stats(client, alice))[1]["jobs_by_status"] == {"queued": 1}
    response = await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=alice.headers)
    assert response.status == 200, await response.text()
    outcome, stats = await _video_stats(client, alice)
    assert outcome == "MISS" and stats["jobs_by_status"] == {"cancelled": 1}

    # Feedback on Alice's generated video counts in her statistics.
    file_id = await _generated_file(db, alice.id)
    assert (await _video_stats(client, alice))[1]["likes"] == 0
    assert (await _video_stats(client, alice))[0] == "HIT"
    response = await client.post(
        "/feedback", json={"content_id": file_id, "event_type": "like"}, headers=alice.headers
    )
    assert response.status == 202, await response.text()
    outcome, stats = await _video_stats(client, alice)
    assert outcome == "MISS" and stats["likes"] == 1


async def _generated_file(db: asyncpg.Pool, owner_id: str) -> str:
    """A finished generated video, written as the finalize step writes it."""
    from db import files as file_rows

    async with db.acquire() as conn:
        await file_rows.add_blob_reference(
            conn, sha256="a" * 64, storage_key="videos/x.mp4", size=10, mime="video/mp4"
        )
        row = await file_rows.insert_file(
            conn,
            id="file_" + "b" * 24,
            owner_id=owner_id,
            blob_sha256="a" * 64,
            filename="v.mp4",
            content_type="video/mp4",
            file_type="video",
            size=10,
            source="generated",
            processing_status="completed",
        )
    return str(row["id"])


async def test_downloads_and_streams_show_in_the_next_read(client, make_user, db):
    from api import background

    alice = await make_user()
    data = await upload(client, alice, png_bytes())
    path = f"/api/v1/files/{data['id']}"
    assert (await _get(client, path, alice))[2]["data"]["download_count"] == 0
    assert (await _get(client, path, alice))[1] == "HIT"
    _, _, perf = await _get(client, "/streaming-performance", alice)
    assert perf["sessions"] == 0
    await (await client.get(f"{path}/download", headers=alice.headers)).read()
    await (await client.get(f"{path}/stream", headers=alice.headers)).read()
    # The analytics are written (then the cache told) after the response ends.
    for _ in range(100):
        async with db.acquire() as conn:
            counts = await conn.fetchrow(
                "SELECT download_count, stream_count FROM files WHERE id = $1", data["id"]
            )
        if tuple(counts) == (1, 1):
            break
        await asyncio.sleep(0.05)
    await background.drain()  # the batch that wrote them has also bumped
    _, outcome, body = await _get(client, path, alice)
    assert outcome == "MISS"
    assert body["data"]["download_count"] == 1 and body["data"]["stream_count"] == 1
    _, outcome, perf = await _get(client, "/streaming-performance", alice)
    assert outcome == "MISS" and perf["sessions"] == 1


async def test_playing_a_video_leaves_admin_wide_and_global_entries_cached(client, make_user, db):
    """Delivery counters are not the owner's write: they retire the owner's
    reads only, and admin-wide and global entries show them within their TTL."""
    from api import background

    admin, alice = await make_user("ADMIN"), await make_user()
    data = await upload(client, alice, png_bytes())
    path = f"/api/v1/files/{data['id']}"
    admin_reads = ("/api/v1/files", path, "/reports/video-stats", "/streaming-performance")
    for read in admin_reads:
        await _get(client, read, admin)
        assert (await _get(client, read, admin))[1] == "HIT", read
    await _get(client, "/reports/storyboard-stats")
    assert (await _get(client, "/reports/storyboard-stats"))[1] == "HIT"
    await _get(client, path, alice)
    assert (await _get(client, path, alice))[1] == "HIT"

    # A player's range requests: each response is counted and written in batches.
    for start in range(3):
        response = await client.get(
            f"{path}/stream", headers={**alice.headers, "Range": f"bytes={start}-{start + 9}"}
        )
        assert response.status == 206
        await response.read()
    await (await client.get(f"{path}/download", headers=admin.headers)).read()

    async def counted() -> bool:
        async with db.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT download_count, stream_count FROM files WHERE id = $1", data["id"]
            )
        return row is not None and tuple(row) == (1, 3)

    await until(counted, "the deliveries counted")
    await background.drain()  # the batches that wrote them have also bumped
    for read in admin_reads:
        assert (await _get(client, read, admin))[1] == "HIT", read
    assert (await _get(client, "/reports/storyboard-stats"))[1] == "HIT"
    # The owner's own reads show the counts at once.
    _, outcome, body = await _get(client, path, alice)
    assert outcome == "MISS"
    assert (body["data"]["download_count"], body["data"]["stream_count"]) == (1, 3)


async def _waiting_on(db: asyncpg.Pool, query_like: str, expected: int) -> bool:
    """Whether exactly ``expected`` sessions wait on a lock, running a query like this."""
    async with db.acquire() as conn:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE $1",
            query_like,
        )
    return bool(waiting == expected)


async def _coalesce(client: Any, db: asyncpg.Pool, path: str, user: Any, kind: str) -> None:
    flights = client.app[CACHE].flights
    computed, joined = flights.computations[kind], flights.coalesced[kind]
    requests = 12
    # Every computation of the read waits on this lock, so all the requests
    # are in flight together; single flight must let only one query through.
    async with db.acquire() as locker:
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute("LOCK TABLE files IN ACCESS EXCLUSIVE MODE")
        tasks = [
            asyncio.ensure_future(client.get(path, headers=user.headers)) for _ in range(requests)
        ]
        await until(
            lambda: flights.coalesced[kind] - joined == requests - 1,
            "every other request joined the one computation",
        )
        assert flights.coalesced[kind] - joined == requests - 1
        # The one computation reaches the database a moment after the others join.
        await until(lambda: _waiting_on(db, "%FROM files f%", 1), "one query on files")
        await transaction.rollback()
    responses = await asyncio.gather(*tasks)
    bodies = [await r.json() for r in responses]
    assert all(r.status == 200 for r in responses)
    assert all(b == bodies[0] for b in bodies)
    assert sorted(r.headers["X-Cache"] for r in responses) == ["COALESCED"] * (requests - 1) + [
        "MISS"
    ]
    assert flights.computations[kind] - computed == 1
    assert (await _get(client, path, user))[1] == "HIT"


async def test_concurrent_identical_reads_are_computed_once(client, make_user, db):
    alice = await make_user()
    data = await upload(client, alice, png_bytes())
    await _coalesce(client, db, f"/api/v1/files/{data['id']}", alice, "file")
    await _coalesce(client, db, "/api/v1/files?items_per_page=20", alice, "files")

    admin = await make_user("ADMIN")
    _, _, dedup = await _get(client, "/api/v1/system/deduplication", admin)
    assert dedup["data"]["coalescing"]["by_kind"]["file"]["coalesced"] >= 11
    assert dedup["data"]["coalesced_requests"] >= 22


async def test_cache_endpoints_give_anonymous_callers_a_summary(client, make_user):
    admin, alice = await make_user("ADMIN"), await make_user()
    data = await upload(client, alice, png_bytes())
    for _ in range(3):
        await _get(client, f"/api/v1/files/{data['id']}", alice)
    for path in ("/api/v1/system/cache", "/api/v1/system/cache/metrics"):
        for caller in (None, alice):
            status, _, body = await _get(client, path, caller)
            assert status == 200
            assert "counters" not in body["data"] and "by_kind" not in body["data"]
    _, _, public = await _get(client, "/api/v1/system/cache/metrics")
    assert public["data"]["hits"] == 2 and public["data"]["misses"] == 1

    _, _, status_body = await _get(client, "/api/v1/system/cache", admin)
    assert status_body["data"]["status"] == "ok"
    assert status_body["data"]["ttl_s"]["file"] > 0
    _, _, metrics = await _get(client, "/api/v1/system/cache/metrics", admin)
    assert metrics["data"]["by_kind"]["file"] == {
        "hits": 2,
        "misses": 1,
        "sets": 1,
        "hit_rate": round(2 / 3, 4),
    }
    _, _, report = await _get(client, "/api/v1/system/cache/report", admin)
    assert report["data"]["entries"]["live_by_kind"]["file"] == 1
    assert report["data"]["recommendations"]
    _, _, public_report = await _get(client, "/api/v1/system/cache/report")
    assert "entries" not in public_report["data"] and public_report["data"]["summary"]


async def test_cache_writes_are_for_admins(client, make_user):
    alice = await make_user()
    for path in (
        "/api/v1/system/cache/invalidate",
        "/api/v1/system/cache/warm",
        "/api/v1/system/optimize",
    ):
        anonymous = await client.post(path)
        assert anonymous.status == 401
        assert (await anonymous.json())["error"]["code"] == "AUTH_REQUIRED"
        user = await client.post(path, headers=alice.headers)
        assert user.status == 403
        assert (await user.json())["error"]["code"] == "PERMISSION_DENIED"


async def test_bad_cache_parameters_are_refused(client, make_user):
    admin = await make_user("ADMIN")
    for query in ("pattern=a%20b", "pattern=x[ab]", "pattern=", "user_id=bob", "user_id="):
        response = await client.post(
            f"/api/v1/system/cache/invalidate?{query}", headers=admin.headers
        )
        assert response.status == 400, query
        assert (await response.json())["error"]["code"] == "VALIDATION_ERROR"
    response = await client.post(
        "/api/v1/system/cache/invalidate",
        data={"pattern": "no spaces please"},
        headers=admin.headers,
    )
    assert response.status == 400
    for query in ("users=-1", "users=1001", "users=many"):
        response = await client.post(f"/api/v1/system/cache/warm?{query}", headers=admin.headers)
        assert response.status == 400, query


async def test_invalidate_by_user_pattern_or_everything(client, make_user):
    admin, alice = await make_user("ADMIN"), await make_user()
    data = await upload(client, alice, png_bytes())
    path = f"/api/v1/files/{data['id']}"

    async def warmed() -> None:
        await _get(client, path, alice)
        assert (await _get(client, path, alice))[1] == "HIT"

    await warmed()
    response = await client.post(
        f"/api/v1/system/cache/invalidate?user_id={alice.id}", headers=admin.headers
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["data"]["scope"] == "user"
    assert (await _get(client, path, alice))[1] == "MISS"
    # Administrators' invalidations and writes' bumps are counted apart.
    _, _, status = await _get(client, "/api/v1/system/cache", admin)
    assert status["data"]["counters"]["invalidations"] == 1
    assert status["data"]["counters"]["write_invalidations"] == 1  # the upload

    await warmed()
    # The spec's curl example sends the pattern as a form body.
    response = await client.post(
        "/api/v1/system/cache/invalidate", data={"pattern": "*:file:*"}, headers=admin.headers
    )
    body = (await response.json())["data"]
    # The live entry and the one the user invalidation left to its TTL.
    assert body["scope"] == "pattern" and body["pattern"]["deleted"] == 2
    assert (await _get(client, path, alice))[1] == "MISS"

    await warmed()
    response = await client.post("/api/v1/system/cache/invalidate", headers=admin.headers)
    body = (await response.json())["data"]
    assert body["scope"] == "all" and body["epoch"] >= 1
    assert (await _get(client, path, alice))[1] == "MISS"


async def test_warm_fills_the_reports_and_is_recorded(client, make_user, db):
    admin, alice = await make_user("ADMIN"), await make_user()
    await upload(client, alice, png_bytes())
    response = await client.post("/api/v1/system/cache/warm?users=5", headers=admin.headers)
    assert response.status == 200, await response.text()
    result = (await response.json())["data"]
    assert result["users"] == 1
    assert result["entries"] == 1 + 2 * 3  # storyboard stats; admin-wide and Alice's reads
    for path in ("/reports/video-stats", "/streaming-performance", "/api/v1/files"):
        assert (await _get(client, path, alice))[1] == "HIT", path
        assert (await _get(client, path, admin))[1] == "HIT", path
    assert (await _get(client, "/reports/storyboard-stats"))[1] == "HIT"
    async with db.acquire() as conn:
        job = await conn.fetchval("SELECT job FROM maintenance_runs ORDER BY id DESC LIMIT 1")
    assert job == "warm_cache"


async def test_optimize_analyzes_and_prunes_unreachable_entries(client, make_user, db):
    admin, alice = await make_user("ADMIN"), await make_user()
    data = await upload(client, alice, png_bytes())
    await _get(client, f"/api/v1/files/{data['id']}", alice)
    await _get(client, "/api/v1/files", alice)
    await upload(client, alice, jpeg_bytes())  # both of Alice's entries are now stale
    await _get(client, "/api/v1/files", alice)  # a live one
    response = await client.post("/api/v1/system/optimize", headers=admin.headers)
    assert response.status == 200, await response.text()
    result = (await response.json())["data"]
    assert "files" in result["analyzed"] and "blobs" in result["analyzed"]
    assert result["pruned"] == 2
    assert result["cache"]["live"] == 1
    assert (await _get(client, "/api/v1/files", alice))[1] == "HIT"
    async with db.acquire() as conn:
        analyzed = await conn.fetchval(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'files'"
        )
    assert analyzed is not None


async def test_deduplication_counts_shared_blobs(client, make_user):
    admin, alice, bob = await make_user("ADMIN"), await make_user(), await make_user()
    content = jpeg_bytes(64, 64)
    await upload(client, alice, content, "a.jpg")
    await upload(client, bob, content, "b.jpg")
    await upload(client, bob, png_bytes(), "c.png")
    # Issue 14 item 6: no token, no figures; a user's figures are their own.
    status, _, anonymous = await _get(client, "/api/v1/system/deduplication")
    assert status == 401 and anonymous["error"]["code"] == "AUTH_REQUIRED"
    for user in (alice, bob):  # each holds the shared bytes once: nothing saved
        _, _, own = await _get(client, "/api/v1/system/deduplication", user)
        assert own["data"]["scope"] == "own" and own["data"]["saved_bytes"] == 0
        assert not {"blobs", "top_shared_blobs", "coalescing", "coalesced_requests"} & set(
            own["data"]
        )
    await upload(client, bob, content, "b2.jpg")  # bob's own duplicate
    _, _, own = await _get(client, "/api/v1/system/deduplication", bob)
    assert own["data"]["saved_bytes"] == len(content) and own["data"]["files"] == 3
    _, _, own = await _get(client, "/api/v1/system/deduplication", alice)
    assert own["data"]["saved_bytes"] == 0 and own["data"]["files"] == 1
    _, _, full = await _get(client, "/api/v1/system/deduplication", admin)
    assert full["data"]["scope"] == "global"
    blobs = full["data"]["blobs"]
    assert blobs["files"] == 4 and blobs["distinct_blobs"] == 2 and blobs["shared_blobs"] == 1
    assert blobs["logical_bytes"] - blobs["stored_bytes"] == 2 * len(content)
    assert full["data"]["saved_bytes"] == 2 * len(content)
    assert full["data"]["top_shared_blobs"][0]["files"] == 3


async def test_a_dead_redis_is_bypassed_not_fatal(settings: Settings):
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}", socket_connect_timeout=1)
    cache = ReadThroughCache(dead, settings)
    calls = 0

    async def compute() -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"n": calls}

    try:
        first = await cache.read(CacheKey("usr_x", "file", "a"), compute)
        assert (first.outcome, json.loads(first.json_text)) == ("bypass", {"n": 1})
        # Within the back-off Redis is not even tried: no connect wait per read.
        second = await cache.read(CacheKey("usr_x", "file", "a"), compute)
        assert (second.outcome, calls, cache.errors, cache.bypassed) == ("bypass", 2, 1, 1)
        # A write's invalidation reports the failure instead of raising.
        assert await bump_generations(dead, settings, ["usr_x"]) is False
    finally:
        await dead.aclose()
