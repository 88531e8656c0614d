"""Per-user quotas: stored bytes, files, concurrent jobs, daily render seconds.

Every refusal is checked for its status, code and details, and for what it
leaves behind: nothing stored (no temporary object, no file row, no
reservation), no job recorded.  The races run two requests at once against the
real PostgreSQL: exactly one may pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from api.app import create_app
from api.keys import STORAGE
from api.quotas import FORM_OVERHEAD
from db import quotas as quota_rows
from t2m.errors import QuotaExceeded
from t2m.ids import new_id
from tests.api.files_helpers import form, upload
from tests.support.errors import assert_error
from tests.support.media import png_bytes

SCRIPT = {"script": "A short scene. Then another one."}


async def _leftovers(client, db: asyncpg.Pool, user_id: str) -> tuple[list[str], int, int]:
    """Temporary objects, file rows of the user, and open reservations."""
    tmp = [info.key async for info in client.app[STORAGE].list("tmp/")]
    async with db.acquire() as conn:
        files = await conn.fetchval("SELECT count(*) FROM files WHERE owner_id = $1", user_id)
        held = await conn.fetchval("SELECT count(*) FROM quota_reservations")
    return tmp, files, held


@pytest.fixture
async def quota_client(aiohttp_client, settings, db):
    """An app with small, known quota defaults; ``make_user`` logs in through it."""

    async def build(**overrides: object):
        return await aiohttp_client(create_app(settings.with_overrides(**overrides)))

    return build


async def _login(client, user) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"username": user.username, "password": user.password}
    )
    assert response.status == 200, await response.text()
    user.token = (await response.json())["data"]["access_token"]


# -- /auth/me -----------------------------------------------------------------


async def test_me_reports_use_and_limits_of_every_quota(quota_client, make_user):
    client = await quota_client(
        quota_stored_bytes=5_000_000,
        quota_files=7,
        quota_render_seconds_per_day=600,
        quota_concurrent_jobs=4,
    )
    user = await make_user()
    other = await make_user()
    content = png_bytes()
    await upload(client, user, content)
    await upload(client, other, png_bytes(color=(1, 2, 3)))  # someone else's: not counted
    response = await client.post("/api/v1/videos/generate", json=SCRIPT, headers=user.headers)
    assert response.status == 202, await response.text()

    me = await (await client.get("/api/v1/auth/me", headers=user.headers)).json()
    quota = me["quota"]
    assert quota["stored_bytes"] == {"used": len(content), "limit": 5_000_000}
    assert quota["files"] == {"used": 1, "limit": 7}
    assert quota["concurrent_jobs"] == {"used": 1, "limit": 4}
    assert quota["render_seconds_today"]["used"] == 0
    assert quota["render_seconds_today"]["limit"] == 600
    assert 0 < quota["render_seconds_today"]["resets_in"] <= 86_401
    assert me["username"] == user.username  # the profile is still there


async def test_identical_bytes_of_another_user_do_not_change_my_use(quota_client, make_user):
    client = await quota_client()
    user, other = await make_user(), await make_user()
    content = png_bytes(color=(9, 9, 9))
    await upload(client, user, content)
    before = (await (await client.get("/api/v1/auth/me", headers=user.headers)).json())["quota"]
    await upload(client, other, content)  # deduplicated storage, invisible to `user`
    after = (await (await client.get("/api/v1/auth/me", headers=user.headers)).json())["quota"]
    assert before["stored_bytes"] == after["stored_bytes"]
    assert before["files"] == after["files"]


async def _what_a_user_sees(client, user) -> dict:
    """Every answer of a user that could reflect how their bytes are stored,
    without ids, times and counters that change on their own."""

    async def data(path: str) -> dict:
        response = await client.get(path, headers=user.headers)
        assert response.status == 200, (path, await response.text())
        return await response.json()

    me = await data("/api/v1/auth/me")
    quota = me["quota"]
    quota["render_seconds_today"].pop("resets_in")
    listing = (await data("/api/v1/files"))["data"]
    items = [
        {k: v for k, v in item.items() if k not in ("updated_at", "last_accessed_at")}
        for item in listing["items"]
    ]
    return {
        "quota": quota,
        "files": items,
        "stats": (await data("/api/v1/files/stats"))["data"],
        "dedup": (await data("/api/v1/system/deduplication"))["data"],
        "contents": (await data("/contents"))["contents"],
    }


def _upload_answer(body: dict) -> dict:
    """The answer with its own id (and links naming it) and times left out."""
    data = body["data"]
    return {
        k: v.replace(data["id"], "<id>") if isinstance(v, str) else v
        for k, v in data.items()
        if k not in ("id", "created_at", "updated_at")
    }


async def test_identical_bytes_of_another_user_change_nothing_i_see(quota_client, make_user):
    """Issue 14 item 6: whether someone else holds the same bytes is invisible —
    in the upload answer, quota use, /auth/me, listings, statistics and the
    deduplication figures."""
    client = await quota_client()
    me, stranger = await make_user(), await make_user()
    guessed = png_bytes(color=(21, 22, 23))
    unknown = png_bytes(color=(24, 25, 26))

    # The same upload answer whether the stranger holds the bytes or not.
    response = await client.post("/api/v1/files/upload", data=form(unknown), headers=me.headers)
    assert response.status == 201, await response.text()
    fresh = _upload_answer(await response.json())
    await upload(client, stranger, guessed)
    response = await client.post("/api/v1/files/upload", data=form(guessed), headers=me.headers)
    assert response.status == 201, await response.text()
    known = _upload_answer(await response.json())
    assert {k for k in fresh if fresh[k] != known[k]} <= {"checksum", "size", "filename"}

    before = await _what_a_user_sees(client, me)
    await upload(client, stranger, guessed)
    await upload(client, stranger, unknown)
    assert await _what_a_user_sees(client, me) == before


# -- stored bytes and files ------------------------------------------------------


async def _room_for_one_picture(quota_client, make_user) -> tuple[Any, Any, bytes]:
    """A client whose stored-bytes quota leaves room for one small PNG and a
    little more; a user of it; the PNG."""
    content = png_bytes()
    client = await quota_client(quota_stored_bytes=len(content) + 100)
    return client, await make_user(), content


async def test_upload_declared_larger_than_free_space_is_refused_unread(
    quota_client, make_user, db
):
    client, user, content = await _room_for_one_picture(quota_client, make_user)
    response = await client.post(
        "/api/v1/files/upload",
        data=form(content + b"\0" * (FORM_OVERHEAD + 1000)),
        headers=user.headers,
    )
    body = await assert_error(response, 413, "QUOTA_EXCEEDED")
    assert body["error"]["details"] == {
        "quota": "stored_bytes",
        "used": 0,
        "limit": len(content) + 100,
    }
    assert "this upload needs" in body["error"]["message"]  # judged by its Content-Length
    assert await _leftovers(client, db, user.id) == ([], 0, 0)
    await upload(client, user, content)  # what fits still does


async def test_upload_over_the_quota_by_a_little_is_refused_while_streaming(
    quota_client, make_user, db
):
    client, user, content = await _room_for_one_picture(quota_client, make_user)
    response = await client.post(
        "/api/v1/files/upload", data=form(content + b"\0" * 1000), headers=user.headers
    )
    await assert_error(response, 413, "QUOTA_EXCEEDED")
    assert await _leftovers(client, db, user.id) == ([], 0, 0)


def _multipart(boundary: str, filename: str, content: bytes) -> tuple[bytes, bytes]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + content, f"\r\n--{boundary}--\r\n".encode()


async def test_streamed_upload_is_stopped_at_the_quota_and_nothing_stays(
    quota_client, make_user, db, settings
):
    """No Content-Length (chunked): the bytes are counted as they arrive."""
    client = await quota_client(quota_stored_bytes=300_000)
    user = await make_user()
    boundary = "quotaboundary"
    head, tail = _multipart(boundary, "big.png", png_bytes())

    async def body() -> AsyncIterator[bytes]:
        yield head
        for _ in range(40):  # 40 × 64 KiB = 2.5 MiB, far past the quota
            yield b"\0" * 65536
        yield tail

    response = await client.post(
        "/api/v1/files/upload",
        data=body(),
        headers={**user.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    body_json = await assert_error(response, 413, "QUOTA_EXCEEDED")
    assert body_json["error"]["details"]["quota"] == "stored_bytes"
    assert await _leftovers(client, db, user.id) == ([], 0, 0)
    # Not even the backend's partial file of the stopped write.
    assert [p for p in settings.storage_root.rglob("*") if p.is_file()] == []


async def test_batch_over_the_quota_keeps_none_of_its_files(quota_client, make_user, db):
    first, second = png_bytes(color=(1, 1, 1)), png_bytes(color=(2, 2, 2))
    client = await quota_client(quota_stored_bytes=len(first) + len(second) // 2)
    user = await make_user()
    boundary = "batchboundary"
    parts = b"".join(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + b"\r\n"
        for name, content in (("a.png", first), ("b.png", second))
    )

    async def body() -> AsyncIterator[bytes]:
        yield parts + f"--{boundary}--\r\n".encode()

    response = await client.post(
        "/api/v1/files/batch-upload",
        data=body(),
        headers={**user.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    await assert_error(response, 413, "QUOTA_EXCEEDED")
    assert await _leftovers(client, db, user.id) == ([], 0, 0)


async def test_file_count_quota_is_413(quota_client, make_user, db):
    client = await quota_client(quota_files=2)
    user = await make_user()
    await upload(client, user, png_bytes(color=(1, 0, 0)))
    await upload(client, user, png_bytes(color=(2, 0, 0)))
    response = await client.post(
        "/upload", data=form(png_bytes(color=(3, 0, 0))), headers=user.headers
    )
    body = await assert_error(response, 413, "QUOTA_EXCEEDED")
    assert body["error"]["details"] == {"quota": "files", "used": 2, "limit": 2}
    tmp, files, held = await _leftovers(client, db, user.id)
    assert (tmp, files, held) == ([], 2, 0)
    # Deleting a file makes room again.
    listing = await (await client.get("/api/v1/files", headers=user.headers)).json()
    file_id = listing["data"]["items"][0]["id"]
    response = await client.delete(f"/api/v1/files/{file_id}", headers=user.headers)
    assert response.status == 200
    await upload(client, user, png_bytes(color=(3, 0, 0)))


async def test_two_parallel_uploads_cannot_both_take_the_last_room(quota_client, make_user, db):
    one, two = png_bytes(color=(5, 5, 5)), png_bytes(color=(6, 6, 6))
    # Room for one file of the two.
    client = await quota_client(quota_stored_bytes=len(one) + len(two) // 2)
    user = await make_user()

    async def send(content: bytes):
        response = await client.post(
            "/api/v1/files/upload", data=form(content), headers=user.headers
        )
        return response.status, await response.json()

    results = await asyncio.gather(send(one), send(two))
    statuses = sorted(status for status, _ in results)
    assert statuses == [201, 413], results
    assert [b["error"]["code"] for s, b in results if s == 413] == ["QUOTA_EXCEEDED"]
    tmp, files, held = await _leftovers(client, db, user.id)
    assert (tmp, files, held) == ([], 1, 0)


async def test_two_parallel_chunked_uploads_are_counted_together(quota_client, make_user, db):
    """Without a Content-Length each upload reserves as its bytes arrive."""
    filler = 400_000
    client = await quota_client(quota_stored_bytes=filler + filler // 2)
    user = await make_user()

    async def send(color: tuple[int, int, int]):
        boundary = f"b{color[0]}"
        head, tail = _multipart(boundary, "p.png", png_bytes(color=color))

        async def body() -> AsyncIterator[bytes]:
            yield head
            for _ in range(filler // 50_000):
                yield b"\0" * 50_000
                await asyncio.sleep(0)  # interleave the two bodies
            yield tail

        response = await client.post(
            "/api/v1/files/upload",
            data=body(),
            headers={**user.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        return response.status

    statuses = sorted(await asyncio.gather(send((7, 0, 0)), send((8, 0, 0))))
    assert statuses == [201, 413]
    tmp, files, held = await _leftovers(client, db, user.id)
    assert (tmp, files, held) == ([], 1, 0)


async def test_a_stale_reservation_of_a_dead_request_stops_counting(quota_client, make_user, db):
    content = png_bytes()
    client = await quota_client(quota_stored_bytes=len(content) + 1000)
    user = await make_user()
    async with db.acquire() as conn:
        await conn.execute(
            "INSERT INTO quota_reservations (id, user_id, bytes, updated_at)"
            " VALUES ($1, $2, $3, $4)",
            new_id("qres"),
            user.id,
            10_000_000,
            datetime.now(UTC) - quota_rows.RESERVATION_STALE_AFTER - timedelta(minutes=1),
        )
    await upload(client, user, content)
    assert (await _leftovers(client, db, user.id))[2] == 0  # deleted on the way


# -- jobs ------------------------------------------------------------------------


async def test_concurrent_jobs_over_the_quota_are_429_with_retry_after(quota_client, make_user, db):
    client = await quota_client(quota_concurrent_jobs=2)
    user = await make_user()
    job_ids = []
    for _ in range(2):
        response = await client.post("/api/v1/videos/generate", json=SCRIPT, headers=user.headers)
        assert response.status == 202, await response.text()
        job_ids.append((await response.json())["data"]["id"])
    response = await client.post("/api/v1/videos/generate", json=SCRIPT, headers=user.headers)
    body = await assert_error(response, 429, "QUOTA_EXCEEDED")
    assert int(response.headers["Retry-After"]) > 0
    assert body["error"]["details"] == {"quota": "concurrent_jobs", "used": 2, "limit": 2}
    # The root-path alias counts the same jobs.
    response = await client.post(
        "/generate-video", data=form(b"One scene.", "s.txt"), headers=user.headers
    )
    await assert_error(response, 429, "QUOTA_EXCEEDED")
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM jobs WHERE owner_id = $1", user.id) == 2
    assert [i async for i in client.app[STORAGE].list("scripts/")] != []
    assert len([i async for i in client.app[STORAGE].list("scripts/")]) == 2

    response = await client.post(f"/api/v1/jobs/{job_ids[0]}/cancel", headers=user.headers)
    assert response.status == 200
    response = await client.post("/api/v1/videos/generate", json=SCRIPT, headers=user.headers)
    assert response.status == 202, await response.text()


async def test_parallel_submissions_never_exceed_the_job_quota(quota_client, make_user, db):
    client = await quota_client(quota_concurrent_jobs=2)
    user = await make_user()

    async def submit() -> int:
        response = await client.post("/api/v1/videos/generate", json=SCRIPT, headers=user.headers)
        return response.status

    statuses = sorted(await asyncio.gather(*(submit() for _ in range(5))))
    assert statuses == [202, 202, 429, 429, 429]
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM jobs WHERE owner_id = $1", user.id) == 2


async def _planned_job(
    conn: asyncpg.Connection, owner_id: str, seconds: float, *, created_at: datetime | None = None
) -> str:
    job_id = new_id("job")
    await conn.execute(
        "INSERT INTO jobs (id, owner_id, status, output_file_id, storyboard_summary, created_at)"
        " VALUES ($1, $2, 'completed', $3, $4, $5)",
        job_id,
        owner_id,
        "file_" + job_id[4:],
        {"duration_s": seconds, "scenes": 1},
        created_at or datetime.now(UTC),
    )
    return job_id


async def test_daily_render_quota_is_429_until_the_next_utc_day(quota_client, make_user, db):
    client = await quota_client(quota_render_seconds_per_day=100)
    user = await make_user()
    async with db.acquire() as conn:
        # Yesterday's seconds do not count.
        await _planned_job(
            conn, user.id, 500, created_at=quota_rows.day_start() - timedelta(hours=1)
        )
        await _planned_job(conn, user.id, 60)
    response = await client.post("/api/v1/videos/generate", json=SCRIPT, headers=user.headers)
    assert response.status == 202, await response.text()
    # A target length past what is left is refused before anything runs.
    response = await client.post(
        "/api/v1/videos/generate", json={**SCRIPT, "duration": 50}, headers=user.headers
    )
    await assert_error(response, 429, "QUOTA_EXCEEDED")

    async with db.acquire() as conn:
        await _planned_job(conn, user.id, 40)
    response = await client.post("/api/v1/videos/generate", json=SCRIPT, headers=user.headers)
    body = await assert_error(response, 429, "QUOTA_EXCEEDED")
    assert body["error"]["details"] == {"quota": "render_seconds_today", "used": 100, "limit": 100}
    retry_after = int(response.headers["Retry-After"])
    midnight = quota_rows.day_start() + timedelta(days=1)
    expected = (midnight - datetime.now(UTC)).total_seconds()
    assert 0 < retry_after <= 86_401
    assert abs(retry_after - expected) < 120  # "seconds to the next UTC day"

    me = await (await client.get("/api/v1/auth/me", headers=user.headers)).json()
    assert me["quota"]["render_seconds_today"]["used"] == 100


async def test_the_render_stage_claims_the_day_s_seconds_atomically(settings, make_user, db):
    """The storyboard stage's check: two plans at once, room for one."""
    limited = settings.with_overrides(quota_render_seconds_per_day=100)
    user = await make_user(login=False)
    async with db.acquire() as conn:
        await _planned_job(conn, user.id, 30)
        first = await _planned_job(conn, user.id, 0)
        second = await _planned_job(conn, user.id, 0)
        await conn.execute(
            "UPDATE jobs SET storyboard_summary = NULL WHERE id = ANY($1::text[])", [first, second]
        )

    async def plan(job_id: str) -> str:
        async with db.acquire() as conn:
            try:
                async with conn.transaction():
                    await quota_rows.claim_render_seconds(
                        conn, user_id=user.id, job_id=job_id, seconds=50, settings=limited
                    )
                    await asyncio.sleep(0.05)  # hold the lock while the other one waits
                    await conn.execute(
                        "UPDATE jobs SET storyboard_summary = $2 WHERE id = $1",
                        job_id,
                        {"duration_s": 50},
                    )
            except QuotaExceeded as exc:
                return f"refused: {exc.details['quota']}"
            return "planned"

    assert sorted(await asyncio.gather(plan(first), plan(second))) == [
        "planned",
        "refused: render_seconds_today",
    ]
    # A plan that fits exactly is accepted.
    async with db.acquire() as conn, conn.transaction():
        await quota_rows.claim_render_seconds(
            conn, user_id=user.id, job_id=new_id("job"), seconds=20, settings=limited
        )


async def test_on_s3_a_stopped_upload_leaves_no_object_or_multipart_part(
    aiohttp_client, s3_settings, db, make_user
):
    """Past the first 8 MiB part: the multipart upload already begun is aborted."""
    client = await aiohttp_client(
        create_app(s3_settings.with_overrides(quota_stored_bytes=10 * 1024 * 1024))
    )
    user = await make_user()
    boundary = "s3quota"
    head, tail = _multipart(boundary, "big.png", png_bytes())

    async def body() -> AsyncIterator[bytes]:
        yield head
        for _ in range(16):  # 16 MiB
            yield b"\0" * (1024 * 1024)
        yield tail

    response = await client.post(
        "/api/v1/files/upload",
        data=body(),
        headers={**user.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    await assert_error(response, 413, "QUOTA_EXCEEDED")
    storage = client.app[STORAGE]
    assert [info.key async for info in storage.list("")] == []
    s3 = await storage._get_client()
    pending = await s3.list_multipart_uploads(Bucket=s3_settings.s3_bucket)
    assert pending.get("Uploads", []) == []
    assert (await _leftovers(client, db, user.id))[1:] == (0, 0)
