"""Authorisation matrix: every route of the app × every kind of caller.

Routes are enumerated from the app's router at collection time, so a route
added anywhere gets cells here automatically — and a route without an entry in
``EXPECTATIONS`` fails with a message saying so: no endpoint ships with an
unreviewed access rule.

Callers: anonymous, user A (owns every object used), user B, an admin, and
three bad tokens of A's — expired, tampered (signature, payload) and revoked
(signed out).  Each cell checks the exact status, that the status is one the
OpenAPI document lists for the operation, and that no caller other than A and
the admin ever sees one of A's object ids in a body (B gets 404 on A's objects,
never 403 or 200).

Defaults: ``ALLOW_ANONYMOUS`` off.  With it on, anonymous callers of the
root-path aliases act as the shared guest user — ``test_guest_mode`` checks
that column.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from aiohttp.web import Application

from api.app import create_app
from t2m.settings import Settings
from tests.conftest import TEST_PASSWORD, insert_test_user
from tests.hardening.conftest import module_settings, serve_app
from tests.infra import Infra
from tests.support.media import png_bytes
from tests.support.tokens import access_token

ANON = "anonymous"
A = "user_a"
B = "user_b"
ADMIN = "admin"
EXPIRED = "expired_token"
TAMPERED_SIGNATURE = "tampered_signature"
TAMPERED_PAYLOAD = "tampered_payload"
REVOKED = "revoked_token"
PRINCIPALS = (ANON, A, B, ADMIN, EXPIRED, TAMPERED_SIGNATURE, TAMPERED_PAYLOAD, REVOKED)
BAD_TOKENS = (EXPIRED, TAMPERED_SIGNATURE, TAMPERED_PAYLOAD, REVOKED)


# -- the expectation table -------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """Expected status per caller, and how to call the route."""

    statuses: dict[str, int]
    body: Callable[[World], Any] | None = None
    # "json" (default when body is set), "form" or "multipart" (body gives fields)
    kind: str = "json"
    query: dict[str, str] = field(default_factory=dict)
    # Objects consumed by the call (deleted, cancelled, signed out) are made
    # fresh for each cell: "{fresh_file}", "{fresh_job}", "{fresh_webhook}" in
    # the path; fresh_token: A/B/admin call with a token of their own to spare.
    fresh_token: bool = False
    # Calls that end every session of their caller (password change, sign out
    # everywhere): A/B/admin call as a new account of their role.
    throwaway_account: bool = False
    # A live stream (Server-Sent Events): only the status of a 200 is read.
    stream: bool = False


def owned(ok: int, *, admin: int | None = None, **kw: Any) -> Rule:
    """One of A's objects: A gets ``ok``, B 404, the admin ``admin`` (default ok)."""
    statuses = {A: ok, B: 404, ADMIN: ok if admin is None else admin, ANON: 401}
    return Rule({**statuses, **dict.fromkeys(BAD_TOKENS, 401)}, **kw)


def signed_in(ok: int, **kw: Any) -> Rule:
    """Any signed-in user; nothing of A's involved."""
    return Rule({A: ok, B: ok, ADMIN: ok, ANON: 401, **dict.fromkeys(BAD_TOKENS, 401)}, **kw)


def admin_only(ok: int, **kw: Any) -> Rule:
    return Rule({A: 403, B: 403, ADMIN: ok, ANON: 401, **dict.fromkeys(BAD_TOKENS, 401)}, **kw)


def public(ok: int, **kw: Any) -> Rule:
    """Reads no token at all: every caller gets ``ok``."""
    return Rule(dict.fromkeys(PRINCIPALS, ok), **kw)


def token_optional(ok: int, **kw: Any) -> Rule:
    """Anonymous allowed, but a token that is present must be valid."""
    return Rule({**dict.fromkeys(PRINCIPALS, ok), **dict.fromkeys(BAD_TOKENS, 401)}, **kw)


def _upload(world: World) -> dict[str, Any]:
    return {"file": ("picture.png", png_bytes(color=(secrets.randbelow(256), 1, 2)))}


def _script(world: World) -> dict[str, Any]:
    return {"file": ("script.txt", b"A short scene. Then another one."), "title": "t"}


def _login(world: World) -> dict[str, Any]:
    return {"username": world.users[A].username, "password": TEST_PASSWORD}


def _register(world: World) -> dict[str, Any]:
    name = f"reg{secrets.token_hex(4)}"
    return {"username": name, "email": f"{name}@example.test", "password": TEST_PASSWORD}


def _feedback(world: World) -> dict[str, Any]:
    return {"content_id": world.a_file, "event_type": "view"}


EXPECTATIONS: dict[tuple[str, str], Rule] = {
    # auth
    ("GET", "/api/v1/auth/health"): public(200),
    ("GET", "/api/v1/auth/status"): token_optional(200),
    ("GET", "/api/v1/auth/me"): signed_in(200),
    ("GET", "/api/v1/auth/permissions"): signed_in(200),
    ("GET", "/api/v1/auth/test-protected"): signed_in(200),
    # Test users are unverified; the admin too.
    ("GET", "/api/v1/auth/test-verified"): Rule(
        {A: 403, B: 403, ADMIN: 403, ANON: 401, **dict.fromkeys(BAD_TOKENS, 401)}
    ),
    ("POST", "/api/v1/auth/verify"): signed_in(200),
    ("POST", "/api/v1/auth/register"): public(201, body=_register),
    ("POST", "/api/v1/auth/login"): public(200, body=_login),
    ("POST", "/api/v1/auth/refresh"): public(
        200, body=lambda w: {"refresh_token": w.fresh_refresh_token()}
    ),
    ("POST", "/api/v1/auth/logout"): signed_in(200, body=lambda w: {}, fresh_token=True),
    ("POST", "/api/v1/auth/logout-all"): signed_in(200, throwaway_account=True),
    ("POST", "/api/v1/auth/password"): signed_in(
        200,
        body=lambda w: {"current_password": TEST_PASSWORD, "new_password": TEST_PASSWORD + "2"},
        throwaway_account=True,
    ),
    # accounts and quotas ({user_id} is A): admins only
    ("GET", "/api/v1/admin/users"): admin_only(200),
    # A is not waiting for approval: the admin reaches the check (409).
    ("POST", "/api/v1/admin/users/{user_id}/approve"): admin_only(409),
    ("GET", "/api/v1/admin/users/{user_id}/quota"): admin_only(200),
    ("PATCH", "/api/v1/admin/users/{user_id}/quota"): admin_only(200, body=lambda w: {}),
    # files
    ("POST", "/api/v1/files/upload"): signed_in(201, body=_upload, kind="multipart"),
    ("POST", "/api/v1/files/batch-upload"): signed_in(
        201,
        body=lambda w: {"files": ("a.png", png_bytes(color=(secrets.randbelow(256), 3, 4)))},
        kind="multipart",
    ),
    ("GET", "/api/v1/files"): signed_in(200),
    ("GET", "/api/v1/files/stats"): signed_in(200),
    ("POST", "/api/v1/files/cleanup"): signed_in(200, body=lambda w: {"dry_run": True}),
    # A signed link of A's works for whoever holds it; no token is read.
    ("GET", "/api/v1/files/secure/{file_id}"): public(200),
    ("GET", "/api/v1/files/{file_id}"): owned(200),
    ("GET", "/api/v1/files/{file_id}/metadata"): owned(200),
    ("GET", "/api/v1/files/{file_id}/download"): owned(200),
    ("GET", "/api/v1/files/{file_id}/stream"): owned(200),
    # A's file is a picture: it has no captions (404 for everyone who may see it)
    ("GET", "/api/v1/files/{file_id}/captions.vtt"): owned(404),
    ("GET", "/api/v1/files/{file_id}/captions.srt"): owned(404),
    # No media worker runs here, so A's upload has no thumbnail yet (404 for
    # A and the admin too; the code says why).
    ("GET", "/api/v1/files/{file_id}/thumbnail"): owned(404),
    ("GET", "/api/v1/files/{file_id}/analytics"): owned(200),
    # HLS and seek previews: A's file is a picture, so it has neither (404 for
    # those who may see it).  The signed tree reads no token: a valid hls
    # signature of A's reaches the path check (404); see test_signed_url_cases.
    ("GET", "/api/v1/files/{file_id}/hls/{path}"): owned(404),
    ("GET", "/api/v1/files/{file_id}/storyboard.vtt"): owned(404),
    ("GET", "/api/v1/files/{file_id}/storyboard.jpg"): owned(404),
    ("GET", "/api/v1/files/secure/{file_id}/hls/{path}"): public(404),
    ("DELETE", "/api/v1/files/{file_id}"): owned(200),
    ("POST", "/api/v1/files/{file_id}/signed-url"): owned(200, body=lambda w: {}),
    ("GET", "/api/v1/files/{file_id}/recommended-tags"): owned(200),
    # the global tag vocabulary: administrators only (fresh names: each call adds one)
    ("GET", "/api/v1/recommender/vocabulary"): admin_only(200),
    ("POST", "/api/v1/recommender/vocabulary"): admin_only(
        201, body=lambda w: {"tags": [f"cur{secrets.token_hex(4)}"]}
    ),
    ("POST", "/api/v1/recommender/vocabulary/promote"): admin_only(
        201, body=lambda w: {"tags": [f"pro{secrets.token_hex(4)}"]}
    ),
    ("GET", "/api/v1/recommender/vocabulary/candidates"): admin_only(200),
    ("DELETE", "/api/v1/recommender/vocabulary/{tag}"): admin_only(404),
    # jobs and videos (A's job is queued: no worker renders it here)
    ("GET", "/api/v1/jobs"): signed_in(200),
    ("GET", "/api/v1/jobs/{job_id}"): owned(200),
    ("GET", "/api/v1/jobs/{job_id}/logs"): owned(200),
    ("GET", "/api/v1/jobs/{job_id}/events"): owned(200, stream=True),
    ("POST", "/api/v1/jobs/{job_id}/events/token"): owned(200),
    ("POST", "/api/v1/jobs/{job_id}/cancel"): owned(200),
    ("DELETE", "/api/v1/jobs/{job_id}"): owned(200),
    ("POST", "/api/v1/videos/generate"): signed_in(
        202, body=lambda w: {"script": "A short scene. Then another one."}
    ),
    ("GET", "/api/v1/videos/{job_id}/status"): owned(200),
    ("GET", "/api/v1/videos/{job_id}/download"): owned(409),
    ("GET", "/api/v1/videos/{job_id}/stream"): owned(409),
    ("GET", "/api/v1/videos/{job_id}/thumbnail"): owned(409),
    ("GET", "/api/v1/videos/{job_id}/captions.vtt"): owned(409),
    ("GET", "/api/v1/videos/{job_id}/captions.srt"): owned(409),
    ("GET", "/api/v1/videos/{job_id}/metadata"): owned(409),
    ("GET", "/api/v1/videos/{job_id}/hls/{path}"): owned(409),
    # voices: any signed-in user (a sample of an unknown voice is 404 before
    # any wait for a narrate worker)
    ("GET", "/api/v1/voices"): signed_in(200),
    ("GET", "/api/v1/voices/{voice_id}/sample"): signed_in(404),
    # system
    ("GET", "/api/v1/system/health"): public(200),
    ("GET", "/api/v1/system/health/live"): public(200),
    ("GET", "/api/v1/system/maintenance-runs"): admin_only(200),
    # monitoring: a summary for anyone, the full detail for admins; logs admin-only
    ("GET", "/api/v1/system/metrics"): token_optional(200),
    ("GET", "/api/v1/system/queue"): token_optional(200),
    ("GET", "/api/v1/system/performance"): token_optional(200),
    ("GET", "/api/v1/system/connections"): token_optional(200),
    ("GET", "/api/v1/system/async"): token_optional(200),
    ("GET", "/api/v1/system/logs"): admin_only(200),
    ("GET", "/logs"): admin_only(200),
    # No METRICS_TOKEN is configured: only an admin's token scrapes.
    ("GET", "/metrics/prometheus"): admin_only(200),
    # cache: figures for anyone, per-kind detail for admins; changes admin-only
    ("GET", "/api/v1/system/cache"): token_optional(200),
    ("GET", "/api/v1/system/cache/metrics"): token_optional(200),
    ("GET", "/api/v1/system/cache/report"): token_optional(200),
    # Own figures for users, global ones for admins; never anonymous.
    ("GET", "/api/v1/system/deduplication"): signed_in(200),
    ("POST", "/api/v1/system/cache/invalidate"): admin_only(200),
    ("POST", "/api/v1/system/cache/warm"): admin_only(200),
    ("POST", "/api/v1/system/optimize"): admin_only(200),
    # webhooks: subscriptions are private to their owner, admins included
    ("POST", "/api/v1/webhooks"): signed_in(
        201, body=lambda w: {"url": "http://127.0.0.1:9/hook", "events": ["job.completed"]}
    ),
    ("GET", "/api/v1/webhooks"): signed_in(200),
    ("GET", "/api/v1/webhooks/{webhook_id}"): owned(200, admin=404),
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): owned(
        200, admin=404, body=lambda w: {"active": True}
    ),
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): owned(200, admin=404),
    ("POST", "/api/v1/webhooks/{webhook_id}/test"): owned(202, admin=404),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): owned(200, admin=404),
    ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): owned(
        202, admin=404
    ),
    # feedback on A's file (B cannot see it: 404, like any other read)
    ("POST", "/api/v1/feedback"): owned(202, body=_feedback),
    # root-path aliases (guest access off by default: see test_guest_mode)
    ("GET", "/health"): public(200),
    ("GET", "/health/live"): public(200),
    ("POST", "/login"): public(200, body=_login, kind="form"),
    ("POST", "/upload"): signed_in(201, body=_upload, kind="multipart"),
    ("GET", "/contents"): signed_in(200),
    ("GET", "/content/{file_id}"): owned(200),
    ("GET", "/download/{file_id}"): owned(200),
    ("GET", "/stream/{file_id}"): owned(200),
    ("GET", "/bucket/stats"): admin_only(200),
    ("GET", "/bucket/list/{segment}"): admin_only(200),
    ("POST", "/generate-video"): signed_in(202, body=_script, kind="multipart"),
    ("GET", "/reports/storyboard-stats"): public(200),
    ("POST", "/feedback"): owned(202, body=_feedback),
    ("GET", "/recommend-tags/{file_id}"): owned(200),
    ("GET", "/metrics"): public(200),
    ("GET", "/reports/video-stats"): signed_in(200),
    ("GET", "/streaming-performance"): signed_in(200),
    ("POST", "/bucket/cleanup"): admin_only(200),
    ("POST", "/bucket/rotate-logs"): admin_only(200),
    ("GET", "/maintenance/failed-operations"): admin_only(200),
    # No failed operation exists: the admin reaches the lookup (404).
    ("POST", "/maintenance/failed-operations/{op_id}/retry"): admin_only(404),
    # the web console: static files, no data, no token read
    ("GET", "/"): public(200),
    ("GET", "/console/{path}"): public(404),
    # the document and its UI
    ("GET", "/api/v1/openapi.json"): public(200),
    ("GET", "/api/docs"): public(200),
    ("GET", "/api/docs/static"): public(200),
    ("GET", "/docs"): public(302),
}

# Routes whose placeholder names differ from the objects they address.
_PLACEHOLDER_ALIASES = {"content_id": "file_id"}


# -- routes of the app -----------------------------------------------------


def _dummy_settings() -> Settings:
    # Building the app connects to nothing; only its router is read here.
    return Settings(
        env="test",
        var_dir=Path("var-unused"),
        database_url="postgresql://unused/unused",
        redis_url="redis://unused:6379/0",
        jwt_secret="x" * 48,
        signing_secret="y" * 48,
        storage_root=Path("storage-unused"),
    )


def app_routes(app: Application) -> list[tuple[str, str]]:
    """(method, canonical path) of every route; HEAD twins of GETs are left out
    (aiohttp answers them with the GET handler)."""
    found: set[tuple[str, str]] = set()
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        path = route.resource.canonical
        for alias, name in _PLACEHOLDER_ALIASES.items():
            path = path.replace("{" + alias + "}", "{" + name + "}")
        found.add((route.method, path))
    return sorted(found, key=lambda r: (r[1], r[0]))


ROUTES = app_routes(create_app(_dummy_settings()))


# -- the world: users, tokens and A's objects -------------------------------


@dataclass
class Caller:
    id: str
    username: str
    token: str = ""


@dataclass
class World:
    client: TestClient
    settings: Settings
    spec: dict[str, Any]
    users: dict[str, Caller] = field(default_factory=dict)
    tokens: dict[str, str | None] = field(default_factory=dict)
    a_file: str = ""
    a_job: str = ""
    a_webhook: str = ""
    a_delivery: str = ""
    a_signed_query: str = ""
    a_hls_query: str = ""
    a_ids: set[str] = field(default_factory=set)
    spare_refresh: list[str] = field(default_factory=list)

    def headers(self, principal: str) -> dict[str, str]:
        token = self.tokens[principal]
        return {} if token is None else {"Authorization": f"Bearer {token}"}

    def fresh_refresh_token(self) -> str:
        return self.spare_refresh.pop()

    async def login(self, username: str) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/auth/login", json={"username": username, "password": TEST_PASSWORD}
        )
        assert response.status == 200, await response.text()
        data: dict[str, Any] = (await response.json())["data"]
        return data

    async def as_a(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        response = await self.client.request(method, path, headers=self.headers(A), **kw)
        assert response.status < 300, (path, response.status, await response.text())
        body: dict[str, Any] = await response.json()
        return body

    async def new_file(self) -> str:
        form = aiohttp.FormData()
        form.add_field(
            "file",
            png_bytes(color=(secrets.randbelow(256), secrets.randbelow(256), 9)),
            filename="picture.png",
            content_type="application/octet-stream",
        )
        file_id: str = (await self.as_a("POST", "/api/v1/files/upload", data=form))["data"]["id"]
        self.a_ids.add(file_id)
        return file_id

    async def new_job(self) -> str:
        body = await self.as_a(
            "POST", "/api/v1/videos/generate", json={"script": "A scene. Another scene."}
        )
        job_id: str = body["data"]["id"]
        self.a_ids.add(job_id)
        return job_id

    async def new_webhook(self) -> str:
        body = await self.as_a(
            "POST",
            "/api/v1/webhooks",
            json={"url": "http://127.0.0.1:9/a-hook", "events": ["job.completed"]},
        )
        webhook_id: str = body["data"]["id"]
        self.a_ids.add(webhook_id)
        return webhook_id


async def _insert_user(settings: Settings, role: str) -> Caller:
    import asyncpg

    username = f"mx{role.lower()}{secrets.token_hex(4)}"
    conn = await asyncpg.connect(settings.database_url)
    try:
        row = await insert_test_user(conn, username, role)
    finally:
        await conn.close()
    return Caller(row["id"], username)


def _flip_signature(token: str) -> str:
    head, payload, signature = token.split(".")
    last = "A" if signature[-2] != "A" else "B"
    # The second-to-last character: the last one carries padding bits that
    # some changes leave the decoded signature equal.
    return f"{head}.{payload}.{signature[:-2]}{last}{signature[-1]}"


def _swap_payload(token: str, **claims: Any) -> str:
    """The same signature over a payload with other claims (e.g. an admin role)."""
    head, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    changed = base64.urlsafe_b64encode(json.dumps({**decoded, **claims}).encode()).rstrip(b"=")
    return f"{head}.{changed.decode()}.{signature}"


async def build_world(client: TestClient, settings: Settings) -> World:
    spec = await (await client.get("/api/v1/openapi.json")).json()
    world = World(client, settings, spec)
    for principal, role in ((A, "USER"), (B, "USER"), (ADMIN, "ADMIN")):
        caller = await _insert_user(settings, role)
        caller.token = (await world.login(caller.username))["access_token"]
        world.users[principal] = caller
        world.tokens[principal] = caller.token
    world.tokens[ANON] = None
    a = world.users[A]
    world.tokens[EXPIRED] = access_token(settings, a.id, now=time.time() - 3600)
    world.tokens[TAMPERED_SIGNATURE] = _flip_signature(a.token)
    world.tokens[TAMPERED_PAYLOAD] = _swap_payload(a.token, role="ADMIN")
    revoked = (await world.login(a.username))["access_token"]
    response = await client.post(
        "/api/v1/auth/logout", json={}, headers={"Authorization": f"Bearer {revoked}"}
    )
    assert response.status == 200, await response.text()
    world.tokens[REVOKED] = revoked

    world.a_file = await world.new_file()
    world.a_job = await world.new_job()
    world.a_webhook = await world.new_webhook()
    ping = await world.as_a("POST", f"/api/v1/webhooks/{world.a_webhook}/test")
    world.a_delivery = ping["data"]["id"]
    world.a_ids.add(world.a_delivery)
    signed = await world.as_a("POST", f"/api/v1/files/{world.a_file}/signed-url", json={})
    world.a_signed_query = signed["data"]["url"].split("?", 1)[1]
    signed = await world.as_a(
        "POST", f"/api/v1/files/{world.a_file}/signed-url", json={"format": "hls"}
    )
    world.a_hls_query = signed["data"]["url"].split("?", 1)[1]
    return world


@pytest.fixture(scope="module")
def matrix_settings(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return module_settings(infra, tmp_path_factory.mktemp("matrix"))


@pytest.fixture(scope="module")
async def world(matrix_settings: Settings) -> AsyncIterator[World]:
    async for client in serve_app(matrix_settings):
        yield await build_world(client, matrix_settings)


# -- the cells --------------------------------------------------------------


async def _resolve(world: World, path: str) -> str:
    values = {
        "{file_id}": world.a_file,
        "{job_id}": world.a_job,
        "{webhook_id}": world.a_webhook,
        "{delivery_id}": world.a_delivery,
        "{user_id}": world.users[A].id,
        "{segment}": "uploads",
        "{op_id}": "fop_" + "0" * 24,
        "{path}": "no-such-file.js",
        "{tag}": "no-such-tag",
        "{voice_id}": "no-such-voice",
    }
    for name, value in values.items():
        path = path.replace(name, value)
    return path


async def _fresh_objects(world: World, method: str, path: str) -> str:
    """Calls that consume their object get a fresh one of A's per cell."""
    consuming = method == "DELETE" or path.endswith("/cancel")
    if not consuming:
        return path
    if "{file_id}" in path:
        return path.replace("{file_id}", await world.new_file())
    if "{job_id}" in path:
        return path.replace("{job_id}", await world.new_job())
    if "{webhook_id}" in path:
        return path.replace("{webhook_id}", await world.new_webhook())
    return path


def _documented(spec: dict[str, Any], method: str, path: str) -> set[int] | None:
    for documented_path, item in spec["paths"].items():
        normalised = documented_path
        for alias, name in _PLACEHOLDER_ALIASES.items():
            normalised = normalised.replace("{" + alias + "}", "{" + name + "}")
        if normalised == path and method.lower() in item:
            return {int(code) for code in item[method.lower()]["responses"]}
    return None


async def call(world: World, method: str, path: str, principal: str) -> tuple[int, bytes, str]:
    """The status and body of the cell's request, and what the request itself
    carried (a body echoing the caller's own input leaks nothing)."""
    rule = EXPECTATIONS[(method, path)]
    target = await _resolve(world, await _fresh_objects(world, method, path))
    headers = world.headers(principal)
    if rule.fresh_token and principal in (A, B, ADMIN):
        spare = (await world.login(world.users[principal].username))["access_token"]
        headers = {"Authorization": f"Bearer {spare}"}
    if rule.throwaway_account and principal in (A, B, ADMIN):
        account = await _insert_user(world.settings, "ADMIN" if principal == ADMIN else "USER")
        spare = (await world.login(account.username))["access_token"]
        headers = {"Authorization": f"Bearer {spare}"}
    if path == "/api/v1/auth/refresh":
        world.spare_refresh.append((await world.login(world.users[A].username))["refresh_token"])
    if path == "/api/v1/files/secure/{file_id}":
        target += "?" + world.a_signed_query
    if path == "/api/v1/files/secure/{file_id}/hls/{path}":
        target += "?" + world.a_hls_query
    if path == "/api/docs/static":
        target += "/swagger-ui.css"
    kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": False}
    if rule.query:
        kwargs["params"] = rule.query
    if rule.body is not None:
        body = rule.body(world)
        if rule.kind == "json":
            kwargs["json"] = body
        else:
            form = aiohttp.FormData()
            for name, value in body.items():
                if isinstance(value, tuple):
                    filename, content = value
                    form.add_field(
                        name, content, filename=filename, content_type="application/octet-stream"
                    )
                else:
                    form.add_field(name, value)
            kwargs["data"] = form
    sent = target + repr(kwargs.get("json", ""))
    response = await world.client.request(method, target, **kwargs)
    if rule.stream and response.status == 200:
        response.close()
        return response.status, b"", sent
    return response.status, await response.read(), sent


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_access(world: World, method: str, path: str, principal: str) -> None:
    rule = EXPECTATIONS.get((method, path))
    assert rule is not None, (
        f"{method} {path} has no entry in EXPECTATIONS (tests/hardening/test_authz_matrix.py):"
        " decide who may call it and add it to the table"
    )
    expected = rule.statuses[principal]
    documented = _documented(world.spec, method, path)
    if documented is not None:
        assert expected in documented, (
            f"{method} {path} answers {expected} to {principal}, which its @docs do not list"
        )
    status, body, sent = await call(world, method, path, principal)
    assert status == expected, f"{principal}: {method} {path} -> {status}: {body[:300]!r}"
    if principal not in (A, ADMIN):
        leaked = [i for i in world.a_ids if i.encode() in body and i not in sent]
        assert not leaked, f"{principal} saw A's objects {leaked} in {method} {path}"


async def test_webhook_events_reach_only_the_owner(world: World) -> None:
    """B (and the admin) subscribed to every job event hear nothing of A's jobs."""
    events = ["job.started", "job.progress", "job.completed", "job.failed", "job.cancelled"]
    hooks: dict[str, str] = {}
    for principal in (A, B, ADMIN):
        response = await world.client.post(
            "/api/v1/webhooks",
            json={"url": "http://127.0.0.1:9/all-jobs", "events": events},
            headers=world.headers(principal),
        )
        assert response.status == 201, await response.text()
        hooks[principal] = (await response.json())["data"]["id"]
    job_id = await world.new_job()
    await world.as_a("POST", f"/api/v1/jobs/{job_id}/cancel")

    async def deliveries(principal: str) -> list[dict[str, Any]]:
        response = await world.client.get(
            f"/api/v1/webhooks/{hooks[principal]}/deliveries", headers=world.headers(principal)
        )
        assert response.status == 200, await response.text()
        items: list[dict[str, Any]] = (await response.json())["data"]["items"]
        return items

    assert [(d["event"], d["job_id"]) for d in await deliveries(A)] == [("job.cancelled", job_id)]
    assert await deliveries(B) == []
    assert await deliveries(ADMIN) == []


# -- guest mode -------------------------------------------------------------

# With ALLOW_ANONYMOUS on, anonymous callers of these root-path aliases act as
# the shared guest user: they may upload, list and generate — and see only the
# guest's own objects, so A's are still 404.  Every other cell is unchanged:
# /api/v1 always wants a token, admin endpoints an admin, and a bad token is
# refused (401) rather than downgraded to the guest.
GUEST_ANONYMOUS: dict[tuple[str, str], int] = {
    ("POST", "/upload"): 201,
    ("GET", "/contents"): 200,
    ("GET", "/content/{file_id}"): 404,
    ("GET", "/download/{file_id}"): 404,
    ("GET", "/stream/{file_id}"): 404,
    ("POST", "/generate-video"): 202,
    ("POST", "/feedback"): 404,
    ("GET", "/recommend-tags/{file_id}"): 404,
    ("GET", "/reports/video-stats"): 200,
    ("GET", "/streaming-performance"): 200,
}


@pytest.fixture(scope="module")
async def guest_world(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    settings = module_settings(infra, tmp_path_factory.mktemp("guest"), allow_anonymous=True)
    async for client in serve_app(settings):
        yield await build_world(client, settings)


@pytest.mark.parametrize("principal", [ANON, REVOKED, TAMPERED_PAYLOAD])
@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_guest_mode(guest_world: World, method: str, path: str, principal: str) -> None:
    rule = EXPECTATIONS.get((method, path))
    assert rule is not None, f"{method} {path} has no entry in EXPECTATIONS"
    expected = rule.statuses[principal]
    if principal == ANON:
        expected = GUEST_ANONYMOUS.get((method, path), expected)
    status, body, sent = await call(guest_world, method, path, principal)
    assert status == expected, (
        f"guest mode, {principal}: {method} {path} -> {status}: {body[:300]!r}"
    )
    leaked = [i for i in guest_world.a_ids if i.encode() in body and i not in sent]
    assert not leaked, f"guest mode, {principal} saw A's objects {leaked} in {method} {path}"


def test_every_table_entry_is_a_route() -> None:
    """A stale entry (route renamed or removed) is as wrong as a missing one."""
    assert sorted(set(EXPECTATIONS) - set(ROUTES)) == []
    assert sorted(set(GUEST_ANONYMOUS) - set(ROUTES)) == []
