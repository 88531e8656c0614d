"""One real app for a whole hardening module, and its cleanup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from api import background
from api.app import create_app
from t2m.settings import Settings
from tests.infra import Infra, delete_namespace, empty_tables, suite_settings


def module_settings(infra: Infra, scratch: Path, **overrides: object) -> Settings:
    """The suite's test settings, for a module-scoped app."""
    # Webhook targets on loopback are accepted (nothing is delivered: no
    # webhook worker runs here).
    return suite_settings(infra, scratch, webhook_allowed_cidrs=("127.0.0.1/32",), **overrides)


async def serve_app(settings: Settings) -> AsyncIterator[TestClient]:
    """The real app on a real port, then the tables and Redis keys it used emptied
    (as the function-scoped ``db`` fixture does for other tests)."""
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        await background.drain()
        conn = await asyncpg.connect(settings.database_url)
        try:
            await empty_tables(conn)
        finally:
            await conn.close()
        delete_namespace(settings.redis_url, settings.redis_namespace)
