"""Shared fixtures: real PostgreSQL and Redis, the app, users and tokens."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from api import background
from api.app import create_app
from db.migrate import migrate_dsn
from db.pool import create_pool
from t2m.passwords import hash_password
from t2m.settings import Settings
from tests.infra import Infra, delete_namespace, empty_tables, provide_infra, suite_settings

# scrypt at full cost would dominate the suite; tests create users directly
# with one precomputed hash.
TEST_PASSWORD = "correct horse battery"
_TEST_PASSWORD_HASH = hash_password(TEST_PASSWORD)


async def insert_test_user(
    conn: asyncpg.Connection, username: str, role: str = "USER", *, verified: bool = False
) -> asyncpg.Record:
    """A user row straight in the database: ``username@example.test``,
    password :data:`TEST_PASSWORD`."""
    from db.users import insert_user

    return await insert_user(
        conn,
        username=username,
        email=f"{username}@example.test",
        password_hash=_TEST_PASSWORD_HASH,
        role=role,
        email_verified=verified,
    )


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    with provide_infra(tmp_path_factory.mktemp("infra")) as found:
        asyncio.run(_migrate_empty(found.database_url))
        yield found


async def _migrate_empty(url: str) -> None:
    """Migrate, then empty the tables: every test starts from the same empty state
    (the first one would otherwise see the rows migrations seed, e.g. the default tag
    vocabulary, and the others not)."""
    await migrate_dsn(url)
    conn = await asyncpg.connect(url)
    try:
        await empty_tables(conn)
    finally:
        await conn.close()


@pytest.fixture
def settings(infra: Infra, tmp_path: Path) -> Settings:
    return suite_settings(infra, tmp_path)


@pytest.fixture
async def db(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(infra.database_url, min_size=1, max_size=3)
    yield pool
    # Apps of the test may still be finishing analytics writes.
    await background.drain()
    async with pool.acquire() as conn:
        await empty_tables(conn)
    await pool.close()
    delete_namespace(infra.redis_url, infra.namespace)


@pytest.fixture
async def client(db: asyncpg.Pool, settings: Settings, aiohttp_client: Any) -> TestClient:
    # ``db`` first: fixtures are torn down in reverse, so the app closes
    # before the tables are truncated.
    return await aiohttp_client(create_app(settings))


@dataclass
class TestUser:
    id: str
    username: str
    password: str
    role: str
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_user(db: asyncpg.Pool, client: TestClient) -> Any:
    async def factory(
        role: str = "USER", *, verified: bool = False, login: bool = True
    ) -> TestUser:
        username = f"user{secrets.token_hex(4)}"
        async with db.acquire() as conn:
            row = await insert_test_user(conn, username, role, verified=verified)
        user = TestUser(row["id"], username, TEST_PASSWORD, role)
        if login:
            response = await client.post(
                "/api/v1/auth/login", json={"username": username, "password": TEST_PASSWORD}
            )
            assert response.status == 200, await response.text()
            user.token = (await response.json())["data"]["access_token"]
        return user

    return factory


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One in-process S3 server (moto) on a free port for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_settings(settings: Settings, moto_endpoint: str) -> Settings:
    return settings.with_overrides(
        storage_backend="s3",
        s3_endpoint_url=moto_endpoint,
        s3_bucket=f"t2m-test-{secrets.token_hex(4)}",
        s3_access_key_id="testing",
        s3_secret_access_key="testing-secret",
    )
