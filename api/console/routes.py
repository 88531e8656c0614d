"""The web console served at /: one HTML page and its static CSS and ES modules.

The console is plain files (no build step) under ``api/console/``.  It routes
with the URL hash (``#/library``), so it needs no server paths besides ``/``
and ``/console/...`` and never shadows the root-path API aliases.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp_apigami import docs

from api.common_schemas import NOT_FOUND
from t2m.errors import NotFound

# At the root path.
root_routes = web.RouteTableDef()

CONSOLE_DIR = Path(__file__).resolve().parent

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}

# The page talks to its own origin only; media and thumbnails come from the
# API as signed same-origin links or blob: URLs.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
        "connect-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


# Files are small and change only with a deploy (or while developing): keep
# each one in memory, keyed by path, and re-read it when its mtime or size moves.
_cache: dict[Path, tuple[int, int, Asset]] = {}


def resolve_asset(relative: str) -> Path | None:
    """The file under the console directory named by ``relative``, or ``None``
    for anything outside it (``..``, absolute paths, symlinks out), a
    directory, a hidden file or an unknown type."""
    if not relative or "\\" in relative or "\x00" in relative:
        return None
    parts = relative.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        return None
    root = CONSOLE_DIR.resolve()
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    if candidate.suffix not in CONTENT_TYPES:
        return None
    return candidate


def load_asset(path: Path) -> Asset:
    stat = path.stat()
    cached = _cache.get(path)
    if cached is not None and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
        return cached[2]
    body = path.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    asset = Asset(body, CONTENT_TYPES[path.suffix], etag)
    _cache[path] = (stat.st_mtime_ns, stat.st_size, asset)
    return asset


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = {value.strip().removeprefix("W/") for value in header.split(",")}
    return "*" in candidates or etag in candidates


def send_asset(request: web.Request, path: Path) -> web.Response:
    asset = load_asset(path)
    # Names are not fingerprinted, so browsers revalidate every time; the
    # ETag turns that into a cheap 304.
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache", **SECURITY_HEADERS}
    if _etag_matches(request.headers.get("If-None-Match"), asset.etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=asset.body, headers={**headers, "Content-Type": asset.content_type})


@root_routes.get("/")
@docs(
    tags=["console"],
    summary="The web console (an HTML page; its views are addressed by the URL hash)",
    responses={200: {"description": "HTML"}, 304: {"description": "Not modified"}},
)
async def index(request: web.Request) -> web.Response:
    return send_asset(request, CONSOLE_DIR / "index.html")


@root_routes.get("/console/{path:.+}")
@docs(
    tags=["console"],
    summary="Static files of the web console (CSS, ES modules, icons)",
    parameters=[
        {
            "in": "path",
            "name": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": "File path under the console directory, e.g. js/api.js",
        }
    ],
    responses={
        200: {"description": "The file"},
        304: {"description": "Not modified"},
        404: NOT_FOUND,
    },
)
async def asset(request: web.Request) -> web.Response:
    path = resolve_asset(request.match_info["path"])
    if path is None:
        raise NotFound("No such console file")
    return send_asset(request, path)


__all__ = ["root_routes"]
