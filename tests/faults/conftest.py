"""Fixtures of the fault tests: throwaway servers and real T2M processes."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.migrate import migrate_dsn
from tests.faults.servers import ThrowawayPostgres, ThrowawayRedis


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[ThrowawayPostgres]:
    """One throwaway PostgreSQL per module (initdb is the slow part)."""
    cluster = ThrowawayPostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_database(pg_cluster: ThrowawayPostgres) -> str:
    """A fresh, migrated database in the module's throwaway cluster."""
    url = pg_cluster.create_database(f"t2m_fault_{secrets.token_hex(4)}")
    asyncio.run(migrate_dsn(url))
    return url


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()
