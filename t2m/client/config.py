"""Saved sign-ins: one file in the user's config directory, mode 600.

``$XDG_CONFIG_HOME/t2m/credentials.json`` (default ``~/.config/t2m/``) holds a
token pair per server, so a token is only ever sent to the server that issued
it, and which server was used last.  Every write replaces the file atomically
(a temporary file created with mode 600, then renamed), so a crash never
leaves a half-written file or one readable by others.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEFAULT_SERVER = "http://127.0.0.1:8000"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "t2m"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


@dataclass
class Login:
    username: str
    access_token: str
    refresh_token: str
    expires_at: float  # when the access token expires (epoch seconds)

    def expiring(self, margin_s: float = 30) -> bool:
        return time.time() + margin_s >= self.expires_at


def normalise_server(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url


def _read() -> dict[str, Any]:
    try:
        data = json.loads(credentials_path().read_text())
    except FileNotFoundError:
        return {"servers": {}}
    except (OSError, ValueError):
        return {"servers": {}}  # unreadable: as if signed out; login rewrites it
    return (
        data
        if isinstance(data, dict) and isinstance(data.get("servers"), dict)
        else {"servers": {}}
    )


def _write(data: dict[str, Any]) -> None:
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = credentials_path()
    tmp = directory / f".credentials.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    # A file that existed with looser permissions is tightened too.
    os.chmod(target, 0o600)


def saved_default_server() -> str | None:
    server = _read().get("default_server")
    return server if isinstance(server, str) else None


def load_login(server: str) -> Login | None:
    entry = _read()["servers"].get(server)
    if not isinstance(entry, dict):
        return None
    try:
        return Login(
            username=str(entry["username"]),
            access_token=str(entry["access_token"]),
            refresh_token=str(entry["refresh_token"]),
            expires_at=float(entry["expires_at"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def save_login(server: str, login: Login) -> None:
    data = _read()
    data["servers"][server] = asdict(login)
    data["default_server"] = server
    _write(data)


def forget_login(server: str) -> bool:
    data = _read()
    if data["servers"].pop(server, None) is None:
        return False
    if data.get("default_server") == server:
        data.pop("default_server")
    _write(data)
    return True
