"""One real app for a whole hardening module, and its cleanup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from api import background
from api.app import create_app
from t2m.settings import Settings
from tests.infra import Infra, delete_namespace


def module_settings(infra: Infra, scratch: Path, **overrides: object) -> Settings:
    """The suite's test settings (see tests/conftest.py), for a module-scoped app."""
    return Settings(
        env="test",
        var_dir=scratch / "var",
        database_url=infra.database_url,
        redis_url=infra.redis_url,
        redis_namespace=infra.namespace,
        jwt_secret="test-jwt-secret-" + "x" * 32,
        signing_secret="test-signing-secret-" + "y" * 32,
        storage_root=scratch / "storage",
        db_pool_max=5,
        rate_limit_general=1_000_000,
        rate_limit_uploads=1_000_000,
        rate_limit_video=1_000_000,
        rate_limit_system=1_000_000,
        # Webhook targets on loopback are accepted (nothing is delivered:
        # no webhook worker runs here).
        webhook_allowed_cidrs=("127.0.0.1/32",),
    ).with_overrides(**overrides)


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
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'schema_migrations'"
            )
            if tables:
                names = ", ".join(f'"{t["tablename"]}"' for t in tables)
                await conn.execute(f"TRUNCATE {names} CASCADE")
        finally:
            await conn.close()
        delete_namespace(settings.redis_url, settings.redis_namespace)
