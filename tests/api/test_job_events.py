"""GET /api/v1/jobs/{id}/events: order, resume, terminal end, and who may follow a job."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from db import jobs as job_rows
from t2m.job_events import JobEvents
from t2m.redis_client import create_redis
from tests.support.polling import until
from tests.support.sse import next_event, read_until_end
from tests.support.tokens import access_token


@pytest.fixture
async def events(settings) -> AsyncIterator[JobEvents]:
    """A publisher like a worker's, on its own Redis connection."""
    client = create_redis(settings)
    yield JobEvents(client, settings)
    await client.aclose()


async def new_job(client, user) -> str:
    response = await client.post(
        "/api/v1/videos/generate",
        json={"script": "One.\n\nTwo.", "quality": "480p"},
        headers=user.headers,
    )
    assert response.status == 202, await response.text()
    return (await response.json())["data"]["id"]


async def test_events_arrive_in_order_and_end_closes_the_stream(client, make_user, events):
    user = await make_user()
    job_id = await new_job(client, user)
    response = await client.get(f"/api/v1/jobs/{job_id}/events", headers=user.headers)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    snapshot = await next_event(response)
    assert snapshot is not None
    assert (snapshot.type, snapshot.id) == ("snapshot", 0)
    assert snapshot.data["id"] == job_id
    assert snapshot.data["status"] == "queued"

    await events.publish(
        job_id, "status", {"status": "processing", "progress": 1, "current_stage": "parse"}
    )
    await events.publish(job_id, "stage", {"stage": "parse", "progress": 1})
    await events.publish_log(job_id, "INFO", "Stage parse started", "parse")
    await events.publish(job_id, "progress", {"progress": 3, "current_stage": "parse"})
    cancel = await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=user.headers)
    assert cancel.status == 200

    rest = await read_until_end(response)  # returns only because the server closes
    assert [(e.id, e.type) for e in rest] == [
        (1, "status"),
        (2, "stage"),
        (3, "log"),
        (4, "progress"),
        (5, "log"),
        (6, "end"),
    ]
    assert rest[2].data["message"] == "Stage parse started"
    assert rest[2].data["stage"] == "parse"
    assert set(rest[2].data) == {"level", "message", "stage", "timestamp"}
    assert rest[4].data["message"] == "Cancel requested"
    assert rest[5].data == {"status": "cancelled", "progress": 0}
    # Nothing is appended after the end, whoever tries.
    assert await events.append(job_id, "progress", {"progress": 50}) == -6


async def test_resume_after_last_event_id_without_gap_or_duplicate(client, make_user, events):
    user = await make_user()
    job_id = await new_job(client, user)
    for value in range(1, 6):
        await events.publish(job_id, "progress", {"progress": value, "current_stage": "render"})

    response = await client.get(
        f"/api/v1/jobs/{job_id}/events", headers={**user.headers, "Last-Event-ID": "2"}
    )
    assert response.status == 200
    seen = [await next_event(response) for _ in range(3)]
    assert [(e.id, e.type, e.data["progress"]) for e in seen if e] == [
        (3, "progress", 3),
        (4, "progress", 4),
        (5, "progress", 5),
    ]
    await events.publish(job_id, "progress", {"progress": 6, "current_stage": "render"})
    live = await next_event(response)
    assert live is not None and (live.id, live.data["progress"]) == (6, 6)
    response.close()

    # The query parameter works too, for clients that cannot set the header.
    again = await client.get(f"/api/v1/jobs/{job_id}/events?last_event_id=5", headers=user.headers)
    resumed = await next_event(again)
    assert resumed is not None and (resumed.id, resumed.type) == (6, "progress")
    again.close()


async def test_resume_older_than_the_history_starts_with_a_snapshot(
    client, make_user, events, settings
):
    user = await make_user()
    job_id = await new_job(client, user)
    for value in range(1, 11):
        await events.publish(job_id, "progress", {"progress": value, "current_stage": "render"})
    # History lost up to id 6 (as MAXLEN trimming would do).
    await events.client.xtrim(events.key(job_id), minid="7-0", approximate=False)

    for last_seen in ("3", "99"):  # too old, and from a history that no longer exists
        response = await client.get(
            f"/api/v1/jobs/{job_id}/events", headers={**user.headers, "Last-Event-ID": last_seen}
        )
        first = await next_event(response)
        assert first is not None and (first.type, first.id) == ("snapshot", 10)
        response.close()

    response = await client.get(
        f"/api/v1/jobs/{job_id}/events", headers={**user.headers, "Last-Event-ID": "6"}
    )
    first = await next_event(response)
    assert first is not None and (first.type, first.id) == ("progress", 7)
    response.close()


async def test_a_finished_job_gets_snapshot_then_end(client, make_user, db, events):
    user = await make_user()
    job_id = await new_job(client, user)
    await events.publish(job_id, "progress", {"progress": 4, "current_stage": "parse"})
    async with db.acquire() as conn:  # failed by a path that publishes nothing (the reaper)
        await job_rows.fail_job(conn, job_id, "worker lost")

    response = await client.get(f"/api/v1/jobs/{job_id}/events", headers=user.headers)
    got = await read_until_end(response)
    assert [(e.type, e.id) for e in got] == [("snapshot", 1), ("end", 2)]
    assert got[0].data["status"] == "failed"
    assert got[1].data == {"status": "failed", "progress": 0, "error": "worker lost"}

    # A client that already saw the end is told again, so it stops.
    response = await client.get(
        f"/api/v1/jobs/{job_id}/events", headers={**user.headers, "Last-Event-ID": "2"}
    )
    assert [(e.type, e.id) for e in await read_until_end(response)] == [("end", 2)]


async def test_a_job_finished_silently_while_followed_still_ends(client, make_user, db):
    user = await make_user()
    job_id = await new_job(client, user)
    response = await client.get(f"/api/v1/jobs/{job_id}/events", headers=user.headers)
    snapshot = await next_event(response)
    assert snapshot is not None and snapshot.type == "snapshot"
    async with db.acquire() as conn:
        await job_rows.fail_job(conn, job_id, "stuck")
    # The stream re-reads the row while idle and closes with the end.
    rest = await read_until_end(response)
    assert [(e.type, e.data["status"]) for e in rest] == [("end", "failed")]


async def test_who_may_follow_a_job(client, make_user, settings, caplog):
    owner, other = await make_user(), await make_user()
    admin = await make_user("ADMIN")
    job_id = await new_job(client, owner)
    other_job = await new_job(client, other)
    url = f"/api/v1/jobs/{job_id}/events"

    response = await client.get(url)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "AUTH_REQUIRED"
    assert (await client.get(url, headers=other.headers)).status == 404
    response = await client.get(url, headers=admin.headers)
    assert response.status == 200
    response.close()
    assert (await client.get(url, headers={**owner.headers, "Last-Event-ID": "x"})).status == 400
    assert (await client.get(f"{url}?last_event_id=-1", headers=owner.headers)).status == 400

    # Events tokens: minted for one job by someone who may see it.
    assert (await client.post(f"{url}/token", headers=other.headers)).status == 404
    assert (await client.post(f"{url}/token")).status == 401
    minted = await client.post(f"{url}/token", headers=owner.headers)
    assert minted.status == 200
    data = (await minted.json())["data"]
    assert data["expires_in"] == 60
    assert data["url"] == f"{url}?token={data['token']}"
    response = await client.get(data["url"])
    assert response.status == 200
    first = await next_event(response)
    assert first is not None and first.type == "snapshot"
    response.close()

    # ...and for that job only; the token never reaches the access log (a
    # request answered at once, so its access line is written before we look).
    with caplog.at_level(logging.INFO, logger="t2m.access"):
        response = await client.get(f"/api/v1/jobs/{other_job}/events?token={data['token']}")
        assert response.status == 404
    access = [r.getMessage() for r in caplog.records if r.name == "t2m.access"]
    assert any(f"/api/v1/jobs/{other_job}/events" in line for line in access), access
    assert not any(data["token"] in line for line in access)
    # An events token is not an access token, nor the other way round.
    response = await client.get(url, headers={"Authorization": f"Bearer {data['token']}"})
    assert response.status == 401
    assert (await client.get(f"{url}?token={owner.token}")).status == 401
    # An expired one is refused.
    expired = access_token(
        settings, owner.id, kind="events", now=time.time() - 120, extra_claims={"job": job_id}
    )
    response = await client.get(f"{url}?token={expired}")
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "AUTH_EXPIRED"
    assert (await client.get(f"{url}?token=not-a-jwt")).status == 401


async def test_events_reach_a_follower_on_another_api_process(
    client, make_user, settings, aiohttp_client
):
    from api.app import create_app

    other_process = await aiohttp_client(create_app(settings))
    user = await make_user()
    job_id = await new_job(client, user)
    response = await other_process.get(f"/api/v1/jobs/{job_id}/events", headers=user.headers)
    snapshot = await next_event(response)
    assert snapshot is not None and snapshot.type == "snapshot"
    assert (await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=user.headers)).status == 200
    rest = await read_until_end(response)
    assert [e.type for e in rest] == ["log", "end"]
    assert rest[-1].data["status"] == "cancelled"


async def test_publishing_survives_a_dead_redis(settings):
    # A port nothing listens on: a stage must go on as if nothing happened.
    dead = settings.with_overrides(redis_url="redis://127.0.0.1:9/0")
    client = create_redis(dead)
    events = JobEvents(client, dead)
    assert not events.backing_off
    await events.publish("job_x", "progress", {"progress": 5})  # logged, not raised
    assert events.backing_off  # the next updates do not wait for Redis again
    await events.publish("job_x", "progress", {"progress": 6})
    await client.aclose()


async def test_many_followers_share_one_redis_read(client, make_user, events):
    """Followers wait on the process's hub, not each in a blocking read of
    its own: the app's Redis connections do not grow with them."""
    from api.jobs.event_hub import JOB_EVENT_HUB
    from api.keys import REDIS

    user = await make_user()
    jobs = [await new_job(client, user) for _ in range(12)]
    streams = []
    for job_id in jobs:
        response = await client.get(f"/api/v1/jobs/{job_id}/events", headers=user.headers)
        snapshot = await next_event(response)
        assert snapshot is not None and snapshot.type == "snapshot"
        streams.append(response)
    hub = client.app[JOB_EVENT_HUB]
    await until(lambda: hub.followed == len(jobs), "the streams' handlers to reach the hub")
    assert hub.followed == len(jobs)
    await asyncio.sleep(0.6)  # followers settled into waiting
    pool = client.app[REDIS].connection_pool
    connections = len(pool._available_connections) + len(pool._in_use_connections)
    assert connections <= 4, connections  # the hub's read and a few short calls

    for job_id in jobs:  # every follower is woken for its own job
        await events.publish_log(job_id, "INFO", f"hello {job_id}", "parse")
    for job_id, response in zip(jobs, streams, strict=True):
        event = await next_event(response)
        assert event is not None
        assert (event.type, event.data["message"]) == ("log", f"hello {job_id}")
        response.close()


@pytest.mark.parametrize("how", ["logout-all", "password-change"])
async def test_signing_out_everywhere_ends_events_tokens(client, make_user, how):
    """An events token is at the account's token generation, like access tokens."""
    owner = await make_user()
    job_id = await new_job(client, owner)
    url = f"/api/v1/jobs/{job_id}/events"
    minted = await client.post(f"{url}/token", headers=owner.headers)
    assert minted.status == 200
    stream_url = (await minted.json())["data"]["url"]
    if how == "logout-all":
        response = await client.post("/api/v1/auth/logout-all", headers=owner.headers)
    else:
        response = await client.post(
            "/api/v1/auth/password",
            json={"current_password": owner.password, "new_password": "brand-new-pass"},
            headers=owner.headers,
        )
    assert response.status == 200, await response.text()
    response = await client.get(stream_url)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "AUTH_INVALID"
