"""Webhook deliveries through the real broker and a real worker to a real receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from pipeline.maintenance.tasks import requeue_webhook_deliveries
from tests.api.files_helpers import upload
from tests.pipeline.workers.spec_webhook_snippet import verify_webhook
from tests.pipeline.workers.test_video_pipeline import VIDEO_QUEUES, wait_job
from tests.support.jobs import submit_video
from tests.support.media import jpeg_bytes, png_bytes
from tests.support.polling import until
from tests.support.webhooks import emit_progress

PUBLIC_BASE = "https://t2m.example.test"
# Fast retries: 1 s base, so the second gap is 1-2 s.
FAST = {
    "WEBHOOK_ALLOWED_CIDRS": "127.0.0.1/32",
    "WEBHOOK_RETRY_BASE_S": "1",
    "WEBHOOK_TIMEOUT_S": "5",
    "WEBHOOK_CONNECT_TIMEOUT_S": "2",
    "PUBLIC_BASE_URL": PUBLIC_BASE,
}


def verify_v2(body: bytes, header: str, secret: str, tolerance_s: int = 300) -> bool:
    """The README's recipe for X-T2M-Signature-V2 (signature plus replay window)."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(fields["t"])
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - timestamp) <= tolerance_s
    return fresh and hmac.compare_digest(expected, fields["sha256"])


@dataclass
class Received:
    name: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A local HTTP receiver; the path's first segment picks its behaviour:
    ``ok…`` answers 200, ``flaky…`` 500 twice then 200, ``down…`` always 503,
    ``hang…`` answers nothing until released, ``first500…`` fails only the
    first request of sequence 1."""

    base: str = ""
    requests: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    open_hangs: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.read()
        self.requests.append(Received(name, dict(request.headers), body, time.monotonic()))
        seen = sum(1 for r in self.requests if r.name == name)
        if name.startswith("hang"):
            self.open_hangs += 1
            try:
                await self.release.wait()
            finally:
                self.open_hangs -= 1
        if name.startswith("flaky") and seen <= 2:
            return web.Response(status=500, text="not yet")
        if name.startswith("down"):
            return web.Response(status=503, text="down")
        if name.startswith("first500") and seen == 1 and json.loads(body)["sequence"] == 1:
            return web.Response(status=500)
        return web.Response(text="ok")

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def at(self, name: str) -> list[Received]:
        return [r for r in self.requests if r.name == name]


@pytest.fixture
def settings(settings):
    # The API side allows the local receiver too (registration checks it).
    return settings.with_overrides(
        webhook_allowed_cidrs=("127.0.0.1/32", "::1/128"), public_base_url=PUBLIC_BASE
    )


@pytest.fixture
async def receiver(aiohttp_server):
    found = Receiver()
    app = web.Application()
    app.router.add_post("/{name}", found.handle)
    server = await aiohttp_server(app)
    found.base = f"http://127.0.0.1:{server.port}"
    yield found
    found.release.set()  # let hanging handlers finish so the server closes at once


async def subscribe(client, user, url: str, events: list[str], secret: str | None = None) -> dict:
    body: dict = {"url": url, "events": events}
    if secret:
        body["secret"] = secret
    response = await client.post("/api/v1/webhooks", json=body, headers=user.headers)
    assert response.status == 201, await response.text()
    return (await response.json())["data"]


async def deliveries(client, user, hook_id: str) -> list[dict]:
    body = await (
        await client.get(
            f"/api/v1/webhooks/{hook_id}/deliveries?items_per_page=100", headers=user.headers
        )
    ).json()
    return body["data"]["items"]


async def settled(client, user, hook_id: str, count: int, timeout_s: float = 30) -> list[dict]:
    async def done():
        items = await deliveries(client, user, hook_id)
        return (
            items if len(items) >= count and all(d["status"] != "pending" for d in items) else None
        )

    return await until(
        done, f"{count} settled deliveries of {hook_id}", timeout_s=timeout_s, interval_s=0.1
    )


def check_signed(request: Received, webhook_secret: str) -> None:
    headers = request.headers
    # As the spec's handler does it, with the raw body as text.
    signature = request.headers.get("X-T2M-Signature")
    assert verify_webhook(request.body.decode("utf-8"), signature, webhook_secret)
    assert not verify_webhook(request.body.decode("utf-8"), signature, "another-secret")
    assert verify_v2(request.body, headers["X-T2M-Signature-V2"], webhook_secret)
    assert headers["X-T2M-Signature-V2"].startswith(f"t={headers['X-T2M-Timestamp']},")
    assert headers["X-T2M-Event"] == request.payload["event"]
    assert headers["X-T2M-Delivery"].startswith("dlv_")
    assert headers["Content-Type"] == "application/json"


async def test_job_events_arrive_once_in_order_and_signed(
    client, make_user, start_worker, receiver
):
    user = await make_user()
    everything = await subscribe(
        client,
        user,
        receiver.url("ok-all"),
        ["job.started", "job.progress", "job.completed", "job.failed", "job.cancelled"],
        secret="standing-secret-0123456789abcdefghij",
    )
    outcome_only = await subscribe(
        client, user, receiver.url("ok-outcome"), ["job.completed", "job.failed"]
    )
    start_worker([*VIDEO_QUEUES, "webhooks"], **FAST)
    response = await client.post(
        "/api/v1/videos/generate",
        json={
            "script": "Webhooks.\n\nThey tell you.\n\nWhen it is done.",
            "quality": "480p",
            "duration": 5,
            "webhook_url": receiver.url("ok-job"),
        },
        headers=user.headers,
    )
    assert response.status == 202, await response.text()
    submitted = (await response.json())["data"]
    job_id, job_secret = submitted["id"], submitted["webhook"]["secret"]
    job = await wait_job(client, user, job_id, ("completed", "failed"), timeout_s=120)
    assert job["status"] == "completed", job["error"]

    standing = await settled(client, user, everything["id"], 4)
    await settled(client, user, outcome_only["id"], 1)
    await settled(client, user, submitted["webhook"]["id"], len(standing))

    for name, secret in (
        ("ok-all", "standing-secret-0123456789abcdefghij"),
        ("ok-job", job_secret),
    ):
        got = receiver.at(name)
        events = [r.payload["event"] for r in got]
        assert events[0] == "job.started" and events[-1] == "job.completed", events
        assert set(events[1:-1]) == {"job.progress"}
        steps = [r.payload["data"]["progress"] // 10 * 10 for r in got[1:-1]]
        assert steps == sorted(set(steps)) and steps[0] == 10 and steps[-1] == 90, steps
        # Once each (ids unique), in order: arrival order is sequence order.
        assert len({r.payload["id"] for r in got}) == len(got)
        sequences = [r.payload["sequence"] for r in got]
        assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
        for request in got:
            check_signed(request, secret)
            assert request.payload["data"]["job_id"] == job_id
    # The one-off subscription sees what the standing one sees.
    assert [r.payload["id"] for r in receiver.at("ok-job")] == [
        r.payload["id"] for r in receiver.at("ok-all")
    ]

    (completed,) = receiver.at("ok-outcome")
    payload = completed.payload
    assert payload["event"] == "job.completed" and payload["timestamp"].endswith("Z")
    data = payload["data"]
    assert (data["job_id"], data["type"], data["status"]) == (
        job_id,
        "video_generation",
        "completed",
    )
    result = data["result"]
    assert result["download_url"] == f"{PUBLIC_BASE}/api/v1/videos/{job_id}/download"
    assert result["thumbnail_url"] == f"{PUBLIC_BASE}/api/v1/videos/{job_id}/thumbnail"
    assert result["file_id"] == job["result"]["file_id"]
    assert all(d["attempts"] == 1 and d["last_status_code"] == 200 for d in standing)
    assert all(d["status"] == "delivered" for d in standing)


async def test_upload_processing_events(client, make_user, start_worker, receiver):
    user = await make_user()
    hook = await subscribe(
        client, user, receiver.url("ok-files"), ["file.processed", "file.failed"]
    )
    start_worker(["media", "webhooks"], **FAST)
    image = await upload(client, user, jpeg_bytes(64, 48), "tiny.jpg")
    broken = await upload(client, user, png_bytes()[:40], "broken.png")
    await settled(client, user, hook["id"], 2)
    by_file = {r.payload["data"]["file_id"]: r for r in receiver.at("ok-files")}
    assert set(by_file) == {image["id"], broken["id"]}
    processed, failed = by_file[image["id"]], by_file[broken["id"]]
    assert processed.payload["event"] == "file.processed"
    assert processed.payload["data"]["metadata"]["width"] == 64
    assert processed.payload["data"]["thumbnail_url"] == (
        f"{PUBLIC_BASE}/api/v1/files/{image['id']}/thumbnail"
    )
    assert failed.payload["event"] == "file.failed" and failed.payload["data"]["error"]
    assert "sequence" not in processed.payload  # numbered per job only
    for request in (processed, failed):
        check_signed(request, hook["secret"])


async def test_retries_with_backoff_then_gives_up_and_redelivers(
    client, make_user, start_worker, receiver
):
    user = await make_user()
    flaky = await subscribe(client, user, receiver.url("flaky"), ["job.completed"])
    down = await subscribe(client, user, receiver.url("down"), ["job.completed"])
    # Deliveries are given up after ~5 s here.
    start_worker(["webhooks"], **FAST, WEBHOOK_MAX_RETRY_HOURS=str(5 / 3600))
    for hook in (flaky, down):
        response = await client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=user.headers)
        assert response.status == 202

    (delivered,) = await settled(client, user, flaky["id"], 1)
    assert (delivered["status"], delivered["attempts"], delivered["last_status_code"]) == (
        "delivered",
        3,
        200,
    )
    first, second, third = receiver.at("flaky")
    assert {r.headers["X-T2M-Delivery"] for r in (first, second, third)} == {delivered["id"]}
    assert first.body == second.body == third.body  # the same event, byte for byte
    # Equal jitter on a 1 s base: the gaps are at least 0.5 s, then 1 s.
    assert second.at - first.at >= 0.5
    assert third.at - second.at >= 1.0

    (gave_up,) = await settled(client, user, down["id"], 1, timeout_s=30)
    assert gave_up["status"] == "failed" and gave_up["attempts"] >= 2
    assert gave_up["last_status_code"] == 503 and gave_up["last_error"] == "HTTP 503: down"
    assert gave_up["next_attempt_at"] is None

    # Redeliver: a new delivery of the same event (receivers dedupe on its id).
    response = await client.post(
        f"/api/v1/webhooks/{flaky['id']}/deliveries/{delivered['id']}/redeliver",
        headers=user.headers,
    )
    assert response.status == 202
    again = (await response.json())["data"]
    items = await settled(client, user, flaky["id"], 2)
    assert {d["id"]: d["status"] for d in items} == {
        again["id"]: "delivered",
        delivered["id"]: "delivered",
    }
    last = receiver.at("flaky")[-1]
    assert last.headers["X-T2M-Delivery"] == again["id"]
    assert last.payload["id"] == first.payload["id"] and last.body == first.body


async def test_a_hanging_receiver_does_not_hold_up_others(
    client, make_user, start_worker, receiver
):
    user = await make_user()
    hanging = await subscribe(client, user, receiver.url("hang"), ["job.completed"])
    healthy = await subscribe(client, user, receiver.url("ok"), ["job.completed"])
    # Two worker threads; the hanging subscription may hold only one.
    start_worker(["webhooks"], **{**FAST, "WEBHOOK_TIMEOUT_S": "30"}, WEBHOOK_MAX_IN_FLIGHT="1")
    for _ in range(4):
        await client.post(f"/api/v1/webhooks/{hanging['id']}/test", headers=user.headers)
    for _ in range(4):
        await client.post(f"/api/v1/webhooks/{healthy['id']}/test", headers=user.headers)

    await settled(client, user, healthy["id"], 4, timeout_s=20)
    assert len(receiver.at("ok")) == 4
    # All that while, the hanging receiver had exactly one request open and
    # none of its deliveries has finished an attempt.
    assert receiver.open_hangs == 1 and len(receiver.at("hang")) == 1
    assert all(d["attempts"] == 0 for d in await deliveries(client, user, hanging["id"]))

    receiver.release.set()  # it recovers: the backlog drains
    items = await settled(client, user, hanging["id"], 4, timeout_s=30)
    assert all(d["status"] == "delivered" for d in items)


async def test_forbidden_targets_are_refused_at_delivery(client, make_user, start_worker, receiver):
    user = await make_user()
    # Registered while the API allowed loopback; the worker does not (the
    # allow-list changed), so it must refuse — by literal and by name.
    literal = await subscribe(client, user, receiver.url("ok-literal"), ["job.completed"])
    port = receiver.base.rsplit(":", 1)[1]
    by_name = await subscribe(client, user, f"http://localhost:{port}/ok-named", ["job.completed"])
    start_worker(["webhooks"], **{**FAST, "WEBHOOK_ALLOWED_CIDRS": ""})
    for hook in (literal, by_name):
        await client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=user.headers)
    for hook in (literal, by_name):
        (refused,) = await settled(client, user, hook["id"], 1)
        assert refused["status"] == "failed" and refused["attempts"] == 1
        assert "refused" in refused["last_error"] and "loopback" in refused["last_error"]
        assert refused["last_status_code"] is None
    assert receiver.requests == []


async def test_held_in_order_and_lost_messages_are_swept(
    client, make_user, start_worker, receiver, db
):
    """Three events of one job whose messages were never sent (a crash
    between commit and enqueue): the sweep finds them; the first fails once,
    and the later ones wait for it."""
    user = await make_user()
    hook = await subscribe(client, user, receiver.url("first500"), ["job.progress"])
    job_id = await submit_video(client, user, script="Queued only.")
    async with db.acquire() as conn:
        for step in (10, 20, 30):
            await emit_progress(conn, user.id, job_id, step)
        await conn.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = now() - interval '5 minutes'"
        )
    start_worker(["webhooks"], **FAST)
    sent: list[str] = []

    async def send(ids):
        from api.keys import ENQUEUER
        from t2m.queues import DELIVER_WEBHOOK

        for delivery_id in ids:
            sent.append(delivery_id)
            await client.app[ENQUEUER].send(DELIVER_WEBHOOK, delivery_id)

    assert await requeue_webhook_deliveries(db, send=send) == {"requeued": 1}  # the head only
    items = await settled(client, user, hook["id"], 3)
    assert all(d["status"] == "delivered" for d in items)
    order = [r.payload["sequence"] for r in receiver.at("first500")]
    assert order == [1, 1, 2, 3]  # 2 and 3 waited for 1's retry
    assert Counter(r.payload["data"]["progress"] for r in receiver.at("first500")) == {
        10: 2,
        20: 1,
        30: 1,
    }
    assert await requeue_webhook_deliveries(db, send=send) == {"requeued": 0}
    assert len(sent) == 1
