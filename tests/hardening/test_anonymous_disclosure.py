"""Anonymous callers learn nothing of the machinery: every GET route of the app
is called without a token, and no answer (body or headers) names an internal
host, a software version, a file-system path, a process id or the broker's
internals (issue 14, "error answers and unauthenticated endpoints").

Worker heartbeats are written as a worker writes them (its key layout and
payload), so the health and queue views have hosts and pids to leak; an
administrator's answer is checked to still carry them.
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from api.monitoring.health import VERSION
from t2m.redis_client import redis_key
from t2m.settings import Settings
from tests.conftest import TEST_PASSWORD, insert_test_user
from tests.hardening.conftest import module_settings, serve_app
from tests.infra import Infra

# Static files (Swagger UI's bundle, the console's scripts) are the same for
# everyone and carry third-party version strings of their own.
_STATIC_PREFIXES = ("/api/docs/static", "/console/")
_PLACEHOLDER = re.compile(r"\{[^}]+\}")
_WORKER_PID = 4242


def _get_routes(client: TestClient) -> list[str]:
    paths: set[str] = set()
    for route in client.app.router.routes():
        if route.method != "GET":
            continue
        path = route.resource.canonical if route.resource else ""
        if not path or path.startswith(_STATIC_PREFIXES):
            continue
        paths.add(_PLACEHOLDER.sub("nope0000", path))
    return sorted(paths)


def _secrets_of_the_machine(settings: Settings) -> dict[str, str]:
    """What must not appear in an anonymous answer, by what it is."""
    import aiohttp as aiohttp_module
    import asyncpg

    db_host = re.sub(r"^.*@", "", settings.database_url.split("//", 1)[1]).split("/")[0]
    redis_host = settings.redis_url.split("//", 1)[1].split("/")[0]
    found = {
        "worker host": socket.gethostname(),
        "database address": db_host,
        "redis address": redis_host,
        "broker namespace": f"{settings.redis_namespace}-dramatiq",
        "broker key": "__acks__",
        "redis url": "redis://",
        "database url": "postgresql://",
        "T2M version": f'"{VERSION}"',
        "aiohttp version": f"aiohttp/{aiohttp_module.__version__}",
        "asyncpg version": asyncpg.__version__,
        "python version": f"Python/{platform.python_version()}",
        "python version ": f"Python {platform.python_version()}",
        "var dir": str(settings.var_dir.resolve()),
        "storage root": str(settings.storage_root.resolve()),
        "interpreter prefix": sys.prefix,
        "site-packages": "site-packages",
        "traceback": "Traceback (most recent call last)",
    }
    return {what: value for what, value in found.items() if value}


@pytest.fixture(scope="module")
async def world(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[TestClient, Settings, dict[str, str]]]:
    settings = module_settings(infra, tmp_path_factory.mktemp("disclosure"))
    async for client in serve_app(settings):
        import asyncpg

        conn = await asyncpg.connect(settings.database_url)
        try:
            row = await insert_test_user(conn, "discloseadmin", "ADMIN")
        finally:
            await conn.close()
        assert row is not None
        response = await client.post(
            "/api/v1/auth/login", json={"username": "discloseadmin", "password": TEST_PASSWORD}
        )
        admin = {"Authorization": f"Bearer {(await response.json())['data']['access_token']}"}
        # A live worker's heartbeat, as pipeline/workers/heartbeat.py writes it.
        beat = {
            "host": socket.gethostname(),
            "pid": _WORKER_PID,
            "queues": ["media", "render"],
            "started_at": time.time(),
            "beat_at": time.time(),
            "active": [],
        }
        redis = aioredis.Redis.from_url(settings.redis_url)
        key = redis_key(settings, "workers", f"{socket.gethostname()}:{_WORKER_PID}")
        await redis.set(key, json.dumps(beat), px=600_000)
        try:
            yield client, settings, admin
        finally:
            await redis.delete(key)
            await redis.aclose()


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    leaks = [what for what, value in secrets.items() if value in text]
    try:
        document = json.loads(text)
    except ValueError:
        return leaks
    keys: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            keys.update(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    leaks += [f"field {k!r}" for k in ("pid", "host", "hostname", "version", "broker") if k in keys]
    return leaks


async def test_no_get_route_discloses_internals_to_anonymous_callers(world) -> None:
    client, settings, _ = world
    secrets = _secrets_of_the_machine(settings)
    routes = _get_routes(client)
    assert "/health" in routes and "/api/v1/system/queue" in routes
    problems: dict[str, list[str]] = {}
    for path in routes:
        async with client.session.get(
            client.make_url(path), allow_redirects=False, timeout=aiohttp.ClientTimeout(total=30)
        ) as response:
            # Live streams: the first bytes are enough.
            body = await response.content.read(256 * 1024)
            text = body.decode("utf-8", "replace")
            headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
            found = _leaks(text, secrets) + [f"header: {w}" for w in _leaks(headers, secrets)]
            if response.headers.get("Server") != "T2M":
                found.append(f"Server header {response.headers.get('Server')!r}")
            if found:
                problems[f"{path} ({response.status})"] = found
    assert not problems, json.dumps(problems, indent=1)


async def test_administrators_still_see_hosts_pids_versions_and_the_broker(world) -> None:
    client, _, admin = world
    health = await (await client.get("/api/v1/system/health", headers=admin)).json()
    assert health["data"]["version"] == VERSION
    workers = health["data"]["components"]["workers"]["workers"]
    assert {"host": socket.gethostname(), "pid": _WORKER_PID} in [
        {"host": w["host"], "pid": w["pid"]} for w in workers
    ]
    legacy = await (await client.get("/health", headers=admin)).json()
    assert (
        legacy["components"]["workers"]["alive"] >= 1
        and "workers" in legacy["components"]["workers"]
    )
    queue = await (await client.get("/api/v1/system/queue", headers=admin)).json()
    assert queue["data"]["broker"] == "redis"
    # Anonymous and signed-in non-admins: the status and the counts only.
    anonymous = await (await client.get("/api/v1/system/health")).json()
    assert anonymous["data"]["status"] == health["data"]["status"]
    assert anonymous["data"]["components"]["workers"]["alive"] >= 1
    assert "broker" not in (await (await client.get("/api/v1/system/queue")).json())["data"]


async def test_a_failing_component_is_named_but_not_explained(
    infra: Infra, tmp_path: Path, db: Any
) -> None:
    """A storage root that cannot be used: anonymous callers learn that storage
    is down, not the path or the error text; the admin gets both."""
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the storage root should be")
    settings = module_settings(infra, tmp_path, storage_root=blocked / "storage")
    async for client in serve_app(settings):
        response = await client.get("/api/v1/system/health")
        assert response.status == 503
        text = await response.text()
        body = json.loads(text)
        assert body["data"]["components"]["storage"]["status"] == "unhealthy"
        assert str(tmp_path) not in text and "Error" not in text, text
        assert "error" not in body["data"]["components"]["storage"]
        legacy = await client.get("/health")
        assert legacy.status == 503 and str(tmp_path) not in await legacy.text()
        # Liveness answers nothing about components at all.
        assert (await client.get("/health/live")).status == 200
        assert os.fspath(blocked) not in await (await client.get("/health/live")).text()
