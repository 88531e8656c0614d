"""The webhook stage without a worker: SSRF guard, signatures, backoff, one attempt."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket

import aiohttp
import pytest
from aiohttp import web

from pipeline.stages import webhooks as stage
from t2m import webhook_events

ALLOW_LOOPBACK = stage.allowed_networks(["127.0.0.1/32"])


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a00:1", "private"),
        ("2002:a00:1::", "private"),
    ],
)
def test_forbidden_addresses(address, reason):
    problem = stage.address_problem(ipaddress.ip_address(address))
    assert problem is not None and reason in problem


def test_public_and_allow_listed_addresses_pass():
    assert stage.address_problem(ipaddress.ip_address("93.184.216.34")) is None
    assert stage.address_problem(ipaddress.ip_address("2606:4700::1111")) is None
    assert stage.address_problem(ipaddress.ip_address("127.0.0.1"), ALLOW_LOOPBACK) is None
    assert stage.address_problem(ipaddress.ip_address("127.0.0.2"), ALLOW_LOOPBACK) is not None


def resolver_for(table: dict[str, list[str]]):
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    return resolve


async def test_check_target_resolves_and_checks_every_address():
    resolve = resolver_for(
        {
            "public.test": ["93.184.216.34"],
            "metadata.test": ["169.254.169.254"],
            "mixed.test": ["93.184.216.34", "10.0.0.7"],
            "empty.test": [],
        }
    )
    assert await stage.check_target("https://public.test/hook", resolver=resolve) == [
        "93.184.216.34"
    ]
    for url, reason in [
        ("http://metadata.test/latest/meta-data", "metadata"),
        ("http://mixed.test/", "10.0.0.7"),
        ("http://empty.test/", "does not resolve"),
        ("http://unknown.test/", "does not resolve"),
        ("ftp://public.test/", "http and https"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http:///nohost", "no host"),
    ]:
        with pytest.raises(stage.TargetRefused, match=reason):
            await stage.check_target(url, resolver=resolve)


async def test_guarded_resolver_returns_only_checked_addresses():
    resolve = resolver_for({"ok.test": ["93.184.216.34"], "rebind.test": ["127.0.0.1"]})
    guard = stage.GuardedResolver((), resolve)
    (result,) = await guard.resolve("ok.test", 443, socket.AF_UNSPEC)
    assert result["host"] == "93.184.216.34" and result["port"] == 443
    with pytest.raises(stage.TargetRefused, match="loopback"):
        await guard.resolve("rebind.test", 80, socket.AF_UNSPEC)


async def test_attempt_refuses_a_host_that_resolves_to_a_forbidden_address(aiohttp_server):
    """DNS rebinding: registration saw a public address, the attempt's own
    lookup answers loopback; the guard refuses and nothing is sent."""
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response()

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    server = await aiohttp_server(app)
    resolve = resolver_for({"rebind.test": ["127.0.0.1"]})

    async def ping(allow: tuple[stage.IPNetwork, ...]) -> stage.AttemptOutcome:
        async with stage.build_session(allow, resolver=resolve) as session:
            return await stage.attempt_delivery(
                session,
                url=f"http://rebind.test:{server.port}/hook",
                secret="s" * 20,
                body="{}",
                event="ping",
                delivery_id="dlv_x",
                timeouts=aiohttp.ClientTimeout(total=2),
            )

    outcome = await ping(())
    assert not outcome.ok and outcome.permanent
    assert "loopback" in (outcome.error or "")
    assert hits == []
    # The same receiver, allow-listed, is reached through the pinned address.
    outcome = await ping(ALLOW_LOOPBACK)
    assert outcome.ok, outcome
    assert hits == ["/hook"]


async def test_attempt_outcomes(aiohttp_server):
    async def handler(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name == "redirect":
            raise web.HTTPFound("http://127.0.0.1:1/elsewhere")
        if name == "error":
            return web.Response(status=503, text="down for maintenance")
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{name}", handler)
    server = await aiohttp_server(app)
    base = f"http://127.0.0.1:{server.port}"
    timeouts = aiohttp.ClientTimeout(total=2, connect=1)
    async with stage.build_session(ALLOW_LOOPBACK) as session:

        async def attempt(url: str, allowed=ALLOW_LOOPBACK) -> stage.AttemptOutcome:
            return await stage.attempt_delivery(
                session,
                url=url,
                secret="s" * 20,
                body="{}",
                event="ping",
                delivery_id="dlv_x",
                timeouts=timeouts,
                allowed=allowed,
            )

        ok = await attempt(f"{base}/fine")
        assert ok.ok and ok.status_code == 204 and ok.duration_ms >= 0
        redirect = await attempt(f"{base}/redirect")
        assert not redirect.ok and redirect.status_code == 302 and not redirect.permanent
        assert "not followed" in (redirect.error or "")
        error = await attempt(f"{base}/error")
        assert error.status_code == 503 and "down for maintenance" in (error.error or "")
        literal = await attempt(f"{base}/fine", allowed=())
        assert literal.permanent and "loopback" in (literal.error or "")


def test_signatures_match_the_documented_recipes():
    secret = "whsec_test"
    body = json.dumps({"event": "ping", "data": {"é": 1}}).encode()
    headers = stage.delivery_headers(
        secret=secret, body=body, event="ping", delivery_id="dlv_1", timestamp=1700000000
    )
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-T2M-Signature"] == f"sha256={expected}"
    expected_v2 = hmac.new(secret.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert headers["X-T2M-Signature-V2"] == f"t=1700000000,sha256={expected_v2}"
    assert headers["X-T2M-Timestamp"] == "1700000000"


def test_retry_delay_is_exponential_with_bounded_jitter():
    low = [stage.retry_delay(n, 10, rand=lambda: 0.0) for n in range(1, 6)]
    high = [stage.retry_delay(n, 10, rand=lambda: 1.0) for n in range(1, 6)]
    assert low == [5, 10, 20, 40, 80]
    assert high == [10, 20, 40, 80, 160]
    assert stage.retry_delay(40, 10, rand=lambda: 1.0) == stage.MAX_RETRY_DELAY_S


def test_event_body_is_ascii_and_carries_id_and_sequence():
    body = webhook_events.event_body(
        event_id="evt_1", event="job.progress", data={"title": "Café"}, sequence=3
    )
    assert body.isascii()
    payload = json.loads(body)
    assert payload["id"] == "evt_1" and payload["sequence"] == 3
    assert payload["timestamp"].endswith("Z")
    assert [webhook_events.progress_step(p) for p in (1, 10, 19, 55, 92, 100)] == [
        0,
        10,
        10,
        50,
        90,
        90,
    ]
