"""/api/v1/webhooks: subscriptions, validation, SSRF refusals, ownership, events recorded.

No worker runs here: deliveries stay pending; their sending is tested in
tests/pipeline/workers/test_webhooks_delivery.py.
"""

from __future__ import annotations

import json

import pytest

from db import webhooks as webhook_rows

HOOK = "http://127.0.0.1:9/hook"  # allow-listed below; nothing listens, nothing is sent
PUBLIC_HOOK = "http://93.184.216.34/t2m"  # a public literal: passes without DNS
BASE = "https://t2m.example.test"


@pytest.fixture
def settings(settings):
    return settings.with_overrides(webhook_allowed_cidrs=("127.0.0.1/32",), public_base_url=BASE)


async def create(client, user, **body) -> dict:
    body = {"url": HOOK, "events": ["job.completed", "job.failed"], **body}
    response = await client.post("/api/v1/webhooks", json=body, headers=user.headers)
    assert response.status == 201, await response.text()
    return (await response.json())["data"]


OWN_SECRET = "my-own-secret-of-at-least-32-bytes"


async def expect_error(response, status: int, code: str) -> dict:
    assert response.status == status, await response.text()
    body = await response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    return body["error"]


async def test_create_list_get_update_delete(client, make_user):
    user = await make_user()
    given = await create(client, user, secret=OWN_SECRET)
    assert given["secret"] == OWN_SECRET
    assert given["events"] == ["job.completed", "job.failed"]
    assert given["active"] is True and given["job_id"] is None
    generated = await create(
        client, user, url=PUBLIC_HOOK, events=["job.progress", "job.progress", "file.processed"]
    )
    assert generated["secret"].startswith("whsec_") and len(generated["secret"]) > 30
    assert generated["events"] == ["job.progress", "file.processed"]  # repeats merged

    listing = await (await client.get("/api/v1/webhooks", headers=user.headers)).json()
    assert [w["id"] for w in listing["data"]["items"]] == [generated["id"], given["id"]]
    assert listing["data"]["pagination"]["total_items"] == 2
    assert all("secret" not in w for w in listing["data"]["items"])
    page = await (
        await client.get("/api/v1/webhooks?page=2&items_per_page=1", headers=user.headers)
    ).json()
    assert [w["id"] for w in page["data"]["items"]] == [given["id"]]

    one = await (await client.get(f"/api/v1/webhooks/{given['id']}", headers=user.headers)).json()
    assert one["data"]["url"] == HOOK and "secret" not in one["data"]

    response = await client.patch(
        f"/api/v1/webhooks/{given['id']}",
        json={"url": PUBLIC_HOOK, "events": ["job.cancelled"], "active": False},
        headers=user.headers,
    )
    assert response.status == 200, await response.text()
    updated = (await response.json())["data"]
    assert (updated["url"], updated["events"], updated["active"]) == (
        PUBLIC_HOOK,
        ["job.cancelled"],
        False,
    )

    response = await client.delete(f"/api/v1/webhooks/{given['id']}", headers=user.headers)
    assert (await response.json())["data"] == {"id": given["id"], "deleted": True}
    response = await client.get(f"/api/v1/webhooks/{given['id']}", headers=user.headers)
    await expect_error(response, 404, "RESOURCE_NOT_FOUND")


async def test_bad_input_is_a_validation_error(client, make_user):
    user = await make_user()
    cases = [
        ({"events": ["job.completed"]}, "url"),
        ({"url": "not a url", "events": ["job.completed"]}, "url"),
        ({"url": "ftp://example.com/hook", "events": ["job.completed"]}, "url"),
        ({"url": "http://exa mple.com/", "events": ["job.completed"]}, "url"),
        ({"url": HOOK, "events": ["job.exploded"]}, "events"),
        ({"url": HOOK, "events": []}, "events"),
        ({"url": HOOK}, "events"),
        ({"url": HOOK, "events": "job.completed"}, "events"),
        ({"url": HOOK, "events": ["ping"]}, "events"),
        ({"url": HOOK, "events": ["job.completed"], "secret": "short"}, "secret"),
        # Issue 14 (secret lengths): 31 bytes is one short of an HMAC-SHA256 key's worth.
        ({"url": HOOK, "events": ["job.completed"], "secret": "x" * 31}, "secret"),
        ({"url": HOOK, "events": ["job.completed"], "secret": "x" * 257}, "secret"),
        ({"url": HOOK, "events": ["job.completed"], "colour": "red"}, "colour"),
        ({"url": None, "events": ["job.completed"]}, "url"),
        ({"url": HOOK, "events": [None]}, "events"),
        ({"url": f"http://{'a' * 64}.example.com/", "events": ["job.completed"]}, "url"),
        ({"url": "http://example.com:99999/", "events": ["job.completed"]}, "url"),
        ([HOOK], "_schema"),
    ]
    for body, field in cases:
        response = await client.post("/api/v1/webhooks", json=body, headers=user.headers)
        error = await expect_error(response, 400, "VALIDATION_ERROR")
        assert field in error["details"], (body, error)

    response = await client.post(
        "/api/v1/webhooks",
        data="{not json",
        headers={**user.headers, "Content-Type": "application/json"},
    )
    await expect_error(response, 400, "VALIDATION_ERROR")

    hook = await create(client, user)
    for body, field in [
        ({}, "_schema"),
        ({"events": []}, "events"),
        ({"secret": "x" * 20}, "secret"),
        ({"active": "sometimes"}, "active"),
        ({"url": "http://10.0.0.1/"}, "url"),
    ]:
        response = await client.patch(
            f"/api/v1/webhooks/{hook['id']}", json=body, headers=user.headers
        )
        error = await expect_error(response, 400, "VALIDATION_ERROR")
        assert field in error["details"], (body, error)

    for query in ("page=0", "items_per_page=500", "status=lost"):
        response = await client.get(
            f"/api/v1/webhooks/{hook['id']}/deliveries?{query}", headers=user.headers
        )
        await expect_error(response, 400, "VALIDATION_ERROR")
    response = await client.post("/api/v1/webhooks", json={"url": HOOK, "events": ["job.failed"]})
    await expect_error(response, 401, "AUTH_REQUIRED")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.5/hook", "private"),
        ("http://192.168.1.10:8080/hook", "private"),
        ("http://172.20.0.1/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
        ("http://[::1]:8080/hook", "loopback"),
        ("http://127.0.0.2/hook", "loopback"),  # the allow-list has 127.0.0.1/32 only
        ("http://0.0.0.0:8000/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://100.64.0.1/", "non-public"),
        ("https://167772161/", "private"),  # 10.0.0.1 written as one number
    ],
)
async def test_forbidden_targets_are_refused_at_registration(client, make_user, url, reason):
    user = await make_user()
    response = await client.post(
        "/api/v1/webhooks", json={"url": url, "events": ["job.completed"]}, headers=user.headers
    )
    error = await expect_error(response, 400, "VALIDATION_ERROR")
    (message,) = error["details"]["url"]
    assert "refused" in message and reason in message, message
    listing = await (await client.get("/api/v1/webhooks", headers=user.headers)).json()
    assert listing["data"]["items"] == []


async def test_another_users_webhook_is_not_found(client, make_user):
    owner, other = await make_user(), await make_user()
    hook = await create(client, owner)
    base = f"/api/v1/webhooks/{hook['id']}"
    ping = await client.post(f"{base}/test", headers=owner.headers)
    delivery_id = (await ping.json())["data"]["id"]
    for method, path, body in [
        ("GET", base, None),
        ("PATCH", base, {"active": False}),
        ("DELETE", base, None),
        ("POST", f"{base}/test", None),
        ("GET", f"{base}/deliveries", None),
        ("POST", f"{base}/deliveries/{delivery_id}/redeliver", None),
        ("GET", "/api/v1/webhooks/whk_" + "0" * 24, None),
        ("GET", "/api/v1/webhooks/not-an-id", None),
        ("POST", f"{base}/deliveries/dlv_{'0' * 24}/redeliver", None),
    ]:
        user = owner if "0" * 24 in path else other
        response = await client.request(method, path, json=body, headers=user.headers)
        await expect_error(response, 404, "RESOURCE_NOT_FOUND")
    listing = await (await client.get("/api/v1/webhooks", headers=other.headers)).json()
    assert listing["data"]["items"] == []
    # Still there, untouched, for its owner.
    one = await (await client.get(base, headers=owner.headers)).json()
    assert one["data"]["active"] is True


async def test_ping_and_redeliver_record_deliveries(client, make_user, db):
    user = await make_user()
    hook = await create(client, user, active=False)
    response = await client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=user.headers)
    assert response.status == 202, await response.text()
    ping = (await response.json())["data"]
    assert ping["event"] == "ping" and ping["status"] == "pending" and ping["attempts"] == 0
    assert ping["next_attempt_at"] is not None

    # A pending delivery is made due now (same delivery); a finished one gets a new row.
    response = await client.post(
        f"/api/v1/webhooks/{hook['id']}/deliveries/{ping['id']}/redeliver", headers=user.headers
    )
    assert response.status == 202
    assert (await response.json())["data"]["id"] == ping["id"]
    async with db.acquire() as conn:
        await webhook_rows.record_attempt(
            conn, ping["id"], status="failed", status_code=500, error="HTTP 500", duration_ms=3.0
        )
    response = await client.post(
        f"/api/v1/webhooks/{hook['id']}/deliveries/{ping['id']}/redeliver", headers=user.headers
    )
    again = (await response.json())["data"]
    assert again["id"] != ping["id"] and again["redelivery_of"] == ping["id"]
    assert again["event_id"] == ping["event_id"] and again["status"] == "pending"

    listing = await (
        await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=user.headers)
    ).json()
    items = listing["data"]["items"]
    assert [d["id"] for d in items] == [again["id"], ping["id"]]
    failed = items[1]
    assert (failed["status"], failed["attempts"], failed["last_status_code"]) == ("failed", 1, 500)
    assert failed["last_error"] == "HTTP 500" and failed["duration_ms"] == 3.0
    assert failed["next_attempt_at"] is None
    assert listing["data"]["pagination"]["total_items"] == 2
    only_failed = await (
        await client.get(
            f"/api/v1/webhooks/{hook['id']}/deliveries?status=failed", headers=user.headers
        )
    ).json()
    assert [d["id"] for d in only_failed["data"]["items"]] == [ping["id"]]


async def test_generate_with_webhook_url_makes_a_one_off_subscription(client, make_user, db):
    user = await make_user()
    standing = await create(client, user, events=["job.cancelled"])
    body = {"script": "Hello there.\n\nSecond scene.", "webhook_url": HOOK}
    response = await client.post(
        "/api/v1/videos/generate", json=body, headers={**user.headers, "Idempotency-Key": "k1"}
    )
    assert response.status == 202, await response.text()
    job = (await response.json())["data"]
    one_off = job["webhook"]
    assert one_off["secret"].startswith("whsec_") and one_off["url"] == HOOK
    assert set(one_off["events"]) == {
        "job.started",
        "job.progress",
        "job.completed",
        "job.failed",
        "job.cancelled",
    }
    replay = await client.post(
        "/api/v1/videos/generate", json=body, headers={**user.headers, "Idempotency-Key": "k1"}
    )
    assert (await replay.json())["data"]["webhook"]["secret"] == one_off["secret"]

    seen = await (
        await client.get(f"/api/v1/webhooks/{one_off['id']}", headers=user.headers)
    ).json()
    assert seen["data"]["job_id"] == job["id"] and "secret" not in seen["data"]
    listing = await (await client.get("/api/v1/webhooks", headers=user.headers)).json()
    assert [w["id"] for w in listing["data"]["items"]] == [standing["id"]]

    # Cancelling emits job.cancelled to both the standing and the one-off subscription.
    response = await client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=user.headers)
    assert response.status == 200
    for hook_id in (standing["id"], one_off["id"]):
        deliveries = await (
            await client.get(f"/api/v1/webhooks/{hook_id}/deliveries", headers=user.headers)
        ).json()
        (delivery,) = deliveries["data"]["items"]
        assert delivery["event"] == "job.cancelled" and delivery["job_id"] == job["id"]
        assert delivery["sequence"] == 1
    async with db.acquire() as conn:
        (event,) = await conn.fetch("SELECT body FROM webhook_events WHERE job_id = $1", job["id"])
    payload = json.loads(event["body"])
    assert payload["event"] == "job.cancelled" and payload["id"].startswith("evt_")
    assert payload["data"]["status"] == "cancelled" and payload["data"]["job_id"] == job["id"]


async def test_generate_refuses_a_forbidden_webhook_url(client, make_user):
    user = await make_user()
    response = await client.post(
        "/api/v1/videos/generate",
        json={"script": "Hi.", "webhook_url": "http://169.254.169.254/latest/meta-data"},
        headers=user.headers,
    )
    error = await expect_error(response, 400, "VALIDATION_ERROR")
    assert "metadata" in error["details"]["webhook_url"][0]
    jobs = await (await client.get("/api/v1/jobs", headers=user.headers)).json()
    assert jobs["data"]["items"] == []
