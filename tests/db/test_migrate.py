"""The migration runner: applies in order, re-runs are no-ops, concurrent runs are safe."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg

from db.migrate import available_migrations, migrate_dsn
from tests.infra import _create_database, _drop_database, _with_database


async def test_fresh_database_concurrent_runs_apply_each_migration_once(infra):
    name = f"t2m_test_mig_{secrets.token_hex(3)}"
    await _create_database(infra.server_url, name)
    url = _with_database(infra.server_url, name)
    try:
        # Several processes start at once (web, workers): the advisory lock
        # serialises them and exactly one applies each migration.
        results = await asyncio.gather(*(migrate_dsn(url) for _ in range(3)))
        applied = [names for names in results if names]
        expected = [f"{m.version:04d}_{m.name}" for m in available_migrations()]
        assert applied == [expected]

        assert await migrate_dsn(url) == []  # re-run: nothing to do
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
            assert [r["version"] for r in rows] == [m.version for m in available_migrations()]
            assert await conn.fetchval("SELECT to_regclass('public.users')") == "users"
        finally:
            await conn.close()
    finally:
        await _drop_database(infra.server_url, name)


def test_migration_files_are_numbered_without_gaps():
    versions = [m.version for m in available_migrations()]
    assert versions == list(range(1, len(versions) + 1))
