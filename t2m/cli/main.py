"""The ``t2m`` command line: servers, workers, maintenance and admin tasks,
and the HTTP client commands (``t2m login``, ``upload``, ``generate`` … in t2m/client)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from t2m.settings import Settings


def _settings() -> Settings:
    return Settings.from_env()


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from api.app import create_app
    from t2m.logs import configure_logging
    from t2m.ports import port_in_use, port_taken_message

    settings = _settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    host, port = args.host or settings.host, args.port or settings.port
    if port_in_use(host, port):
        print(port_taken_message(host, port), file=sys.stderr)
        return 1
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        access_log=None,  # the request middleware logs each request with its id
        print=None,
        shutdown_timeout=10,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from t2m.worker_modules import modules_for, served_queues

    queues = args.queues or served_queues()
    try:
        modules = modules_for(queues)
    except ValueError as exc:
        print(f"t2m worker: {exc}", file=sys.stderr)
        return 2
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        *modules,
        "--queues",
        *queues,
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
    ]
    # An idle queue is polled this often (Dramatiq's default is 1 s): it
    # bounds the delay of every hand-off between stages.
    os.environ["dramatiq_worker_timeout"] = str(args.idle_poll_ms)  # noqa: SIM112 (its name)
    if queues == ["render"]:
        # A render worker takes one message at a time (Dramatiq would prefetch
        # two per thread): an idle worker elsewhere gets the next segment, and
        # the worker's memory is one segment's.
        os.environ.setdefault("dramatiq_queue_prefetch", "1")
    # Replace this process so signals reach Dramatiq's supervisor directly.
    os.execv(sys.executable, argv)  # noqa: S606
    return 0  # not reached


def cmd_scheduler(args: argparse.Namespace) -> int:
    from scheduler.jobs import SCHEDULED_JOBS, parse_job_overrides
    from scheduler.main import run_scheduler
    from t2m.logs import configure_logging

    try:
        jobs = parse_job_overrides(args.job) if args.job else SCHEDULED_JOBS
    except ValueError as exc:
        print(f"t2m scheduler: {exc}", file=sys.stderr)
        return 2
    settings = _settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    asyncio.run(run_scheduler(settings, jobs, lease_ms=int(args.lease_s * 1000)))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from db.migrate import migrate_dsn

    applied = asyncio.run(migrate_dsn(_settings().database_url))
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def cmd_create_admin(args: argparse.Namespace) -> int:
    import asyncpg

    from db.bootstrap import ensure_admin

    settings = _settings()

    async def run() -> str | None:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await ensure_admin(
                conn, username=args.username or settings.admin_username, email=settings.admin_email
            )
        finally:
            await conn.close()

    password = asyncio.run(run())
    if password is None:
        print("admin user already exists")
    else:
        print(f"admin user created; password: {password}")
    return 0


def cmd_maintenance(args: argparse.Namespace) -> int:
    import json

    from db.pool import create_pool
    from pipeline.maintenance.context import build_context
    from pipeline.maintenance.registry import run_task
    from t2m.broker import build_broker
    from t2m.enqueue import Enqueuer
    from t2m.redis_client import create_redis
    from t2m.storage import build_storage

    params: dict[str, Any] = {}
    for item in args.param or []:
        name, _, value = item.partition("=")
        params[name.strip()] = float(value)

    async def run() -> dict[str, object]:
        settings = _settings()
        pool = await create_pool(settings.database_url, min_size=1, max_size=2)
        client = create_redis(settings) if settings.redis_url else None
        storage = build_storage(settings)
        broker = build_broker(settings)
        ctx = build_context(
            settings,
            pool=pool,
            storage=storage,
            enqueuer=Enqueuer(broker),
            redis=client,
        )
        try:
            return await run_task(ctx, args.task, **params)
        finally:
            await pool.close()
            await storage.aclose()
            if client is not None:
                await client.aclose()
            broker.close()

    print(json.dumps(asyncio.run(run()), default=str))
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from t2m.cli.dev import run_dev

    return run_dev(Path(args.procfile) if args.procfile else None)


def build_parser() -> argparse.ArgumentParser:
    from pipeline.maintenance.registry import MAINTENANCE_TASKS

    parser = argparse.ArgumentParser(prog="t2m", description="T2M text-to-media service")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a Dramatiq worker for some queues")
    worker.add_argument("--queues", nargs="+", help="queues to consume (default: all)")
    worker.add_argument("--processes", type=int, default=1)
    worker.add_argument("--threads", type=int, default=2)
    worker.add_argument(
        "--idle-poll-ms", type=int, default=100, help="poll interval of an idle queue"
    )
    worker.set_defaults(func=cmd_worker)

    scheduler = sub.add_parser("scheduler", help="run the maintenance scheduler")
    scheduler.add_argument(
        "--job",
        action="append",
        metavar="NAME=SECONDS",
        help="run only these jobs at these intervals (repeatable; default: the full schedule)",
    )
    scheduler.add_argument(
        "--lease-s", type=float, default=30.0, help="leader lease: how soon a standby takes over"
    )
    scheduler.set_defaults(func=cmd_scheduler)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    admin = sub.add_parser("create-admin", help="create the admin user if missing")
    admin.add_argument("--username")
    admin.set_defaults(func=cmd_create_admin)

    maintenance = sub.add_parser("maintenance", help="run one maintenance task now")
    maintenance.add_argument("task", choices=sorted(MAINTENANCE_TASKS))
    maintenance.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="task parameter, e.g. max_age_hours=12 (repeatable)",
    )
    maintenance.set_defaults(func=cmd_maintenance)

    # Listed for --help; main() hands its arguments to the simulator untouched.
    sub.add_parser(
        "recommender",
        help="'recommender simulate --synthetic N | --csv PATH [--json]': closed-loop evaluation",
    )

    dev = sub.add_parser("dev", help="run everything locally (embedded PostgreSQL/Redis)")
    dev.add_argument(
        "--procfile",
        help="the processes to run (default: ./Procfile, else the one installed with T2M)",
    )
    dev.set_defaults(func=cmd_dev)

    # The client side: login, upload, generate, jobs, download, files.
    from t2m.client.commands import add_client_commands

    add_client_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # The recommender's small matrix products slow down tenfold when BLAS
    # spreads them over threads that the other processes of this machine
    # also want; set before numpy is first imported.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["recommender", "simulate"]:
        from recommender.simulate import main as simulate

        return simulate(argv[2:])
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
