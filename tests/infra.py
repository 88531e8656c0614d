"""Test infrastructure: find or start PostgreSQL and Redis, own only what we create.

PostgreSQL: ``T2M_TEST_DATABASE_URL``, ``DATABASE_URL`` or the standard local
server when one answers, else an embedded server; either way the suite works
in a throwaway database it creates and drops.  Redis likewise, with every key
under a per-run namespace that is deleted at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import redis

from t2m.embedded import EmbeddedPostgres, EmbeddedRedis
from t2m.settings import Settings

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


@dataclass
class Infra:
    database_url: str
    server_url: str
    database_name: str
    redis_url: str
    namespace: str


def _postgres_answers(url: str) -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True

    return asyncio.run(probe())


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _candidates(*names: str, default: str) -> list[str]:
    return [url for url in (*(os.environ.get(n, "") for n in names), default) if url]


def _with_database(url: str, name: str) -> str:
    # Replace the path (database) of a postgresql:// URL, keeping the query
    # (a Unix-socket host is given as ?host=...).
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.contextmanager
def provide_infra(scratch: Path) -> Iterator[Infra]:
    with contextlib.ExitStack() as stack:
        server_url = next(
            (
                u
                for u in _candidates(
                    "T2M_TEST_DATABASE_URL", "DATABASE_URL", default=LOCAL_POSTGRES
                )
                if _postgres_answers(u)
            ),
            None,
        )
        if server_url is None:
            postgres = EmbeddedPostgres(scratch / "pg")
            stack.callback(postgres.stop)
            server_url = postgres.uri()
        redis_url = next(
            (
                u
                for u in _candidates("T2M_TEST_REDIS_URL", "REDIS_URL", default=LOCAL_REDIS)
                if _redis_answers(u)
            ),
            None,
        )
        if redis_url is None:
            redis_server = EmbeddedRedis(scratch / "redis")
            stack.callback(redis_server.stop)
            redis_url = redis_server.url

        suffix = secrets.token_hex(4)
        database = f"t2m_test_{suffix}"
        asyncio.run(_create_database(server_url, database))
        stack.callback(lambda: asyncio.run(_drop_database(server_url, database)))
        namespace = f"t2mtest-{suffix}"
        stack.callback(delete_namespace, redis_url, namespace)
        yield Infra(
            _with_database(server_url, database), server_url, database, redis_url, namespace
        )


async def _on_server(server_url: str, statement: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _create_database(server_url: str, name: str) -> None:
    await _on_server(server_url, f'CREATE DATABASE "{name}"')


async def _drop_database(server_url: str, name: str) -> None:
    await _on_server(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def delete_namespace(redis_url: str, namespace: str) -> None:
    """Delete this run's keys (ours and the broker's), nothing else."""
    client = redis.Redis.from_url(redis_url)
    for pattern in (f"{namespace}:*", f"{namespace}-dramatiq*"):
        batch = list(client.scan_iter(pattern, count=500))
        if batch:
            client.delete(*batch)


def suite_settings(infra: Infra, scratch: Path, **overrides: object) -> Settings:
    """The settings every test app starts from: this run's servers and scratch
    directory, fixed secrets, and rate limits and quotas out of the way (suites
    make many calls per user; the limits have their own tests)."""
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
        quota_concurrent_jobs=1_000_000,
        quota_files=1_000_000,
        quota_render_seconds_per_day=1_000_000,
    ).with_overrides(**overrides)


async def empty_tables(conn: asyncpg.Connection) -> None:
    """Truncate every table but the migration record."""
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        " AND tablename <> 'schema_migrations'"
    )
    if tables:
        names = ", ".join(f'"{t["tablename"]}"' for t in tables)
        await conn.execute(f"TRUNCATE {names} CASCADE")
