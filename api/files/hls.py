"""Serve a video's HLS tree and seek previews, by token or by signed link.

The package worker stores the tree under ``hls/{file_id}/`` (see
``pipeline/stages/hls_package.py``), writing the master playlist last, so a
master that exists names only files that exist.

Signed playback (kind ``hls``): one signature covers one file's tree until
it expires.  Playlists and the thumbnails track are rewritten as they are
served, every URI inside getting the same signed query, so a player carries
it to each request without knowing about it.  A playlist request checks the
signer and the file in the database (a deleted file gets no new playlist at
once); a segment or image request is verified by the HMAC alone — no
database or Redis round trip per segment — and is served from the file's
prefix, which deleting the file removes.  A player or cache may keep a
segment it already fetched for ``SIGNED_SEGMENT_MAX_AGE_S``.

Players on other origins fetch all of it with CORS; these responses are
authorised by a bearer token or a signed link, never by cookies, so allowing
any origin grants nothing a page could not already ask for.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiohttp import web

from api.keys import STORAGE
from api.serving import serve_object
from t2m.errors import NotFound
from t2m.filenames import content_disposition
from t2m.storage.base import Storage

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
# The same table as the packager's: not imported from it, since that module
# loads PyAV, which the web process never imports.
CONTENT_TYPES = {
    ".m3u8": PLAYLIST_TYPE,
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".vtt": "text/vtt; charset=utf-8",
    ".jpg": "image/jpeg",
}
# Every name the packager writes; anything else is not part of a tree.
TREE_PATH = re.compile(
    r"master\.m3u8|storyboard\.(?:vtt|jpg)|subs/(?:index\.m3u8|subtitles\.vtt)"
    r"|(?:[0-9]{3,4}p|original)/(?:index\.m3u8|init\.mp4|seg_[0-9]{5}\.m4s)",
    re.ASCII,
)
PLAYLIST_MAX_AGE_S = 5
SIGNED_SEGMENT_MAX_AGE_S = 300
SEGMENT_MAX_AGE_S = 365 * 24 * 3600
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, ETag",
}
_URI_ATTRIBUTE = re.compile(r'URI="([^"?#]+)"')
_SPRITE_REFERENCE = re.compile(r"^(storyboard\.jpg)(#xywh=)", re.MULTILINE)


def hls_prefix(file_id: str) -> str:
    return f"hls/{file_id}/"


def is_rewritten(path: str) -> bool:
    """Playlists and the thumbnails track: text naming other files of the tree."""
    return path.endswith(".m3u8") or path == "storyboard.vtt"


def check_path(path: str) -> str:
    if not TREE_PATH.fullmatch(path):
        raise NotFound("No such HLS file", "Start from master.m3u8")
    return path


def sign_references(text: str, path: str, query: str) -> str:
    """``text`` (a playlist or the thumbnails track) with ``?query`` on every
    reference.  References are relative, so the signed path they resolve
    against stays the base."""
    if path == "storyboard.vtt":
        return _SPRITE_REFERENCE.sub(rf"\1?{query}\2", text)
    lines = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            line = f"{line}?{query}"
        elif line.startswith("#"):
            line = _URI_ATTRIBUTE.sub(rf'URI="\1?{query}"', line)
        lines.append(line)
    return "\n".join(lines) + "\n"


async def send_hls_file(
    request: web.Request, file_id: str, path: str, *, signed_query: str | None
) -> web.StreamResponse:
    """One file of ``file_id``'s tree; the caller has authorised the request."""
    storage: Storage = request.config_dict[STORAGE]
    key = hls_prefix(file_id) + check_path(path)
    suffix = path[path.rfind(".") :]
    if is_rewritten(path):
        try:
            text = (await storage.get_bytes(key)).decode("utf-8")
        except NotFound:
            raise _not_packaged(path) from None
        if signed_query is not None:
            text = sign_references(text, path, signed_query)
        return web.Response(
            body=text.encode("utf-8"),
            headers={
                **CORS_HEADERS,
                "Content-Type": CONTENT_TYPES[suffix],
                "Cache-Control": f"private, max-age={PLAYLIST_MAX_AGE_S}",
                "X-Content-Type-Options": "nosniff",
            },
        )
    info = await storage.stat(key)
    if info is None:
        raise _not_packaged(path)
    max_age = SEGMENT_MAX_AGE_S if signed_query is None else SIGNED_SEGMENT_MAX_AGE_S
    return await serve_object(
        request,
        storage,
        key,
        size=info.size,
        etag=f'"{info.etag}"' if info.etag else f'"{file_id}-{path}-{info.size}"',
        last_modified=info.modified.astimezone(UTC) if info.modified else datetime.now(UTC),
        content_type=CONTENT_TYPES[suffix],
        content_disposition=content_disposition(path.rsplit("/", 1)[-1], inline=True),
        extra_headers={**CORS_HEADERS, "Cache-Control": f"private, max-age={max_age}, immutable"},
    )


def _not_packaged(path: str) -> NotFound:
    if path == "master.m3u8" or path.startswith("storyboard."):
        return NotFound(
            "Not packaged",
            "Only videos have HLS and seek previews, made by the package worker after the"
            " render or the upload's processing",
        )
    return NotFound("No such HLS file", "Start from master.m3u8")


async def delete_tree(storage: Storage, file_id: str) -> int:
    """Remove a file's HLS tree (on delete: its signed segment links stop)."""
    keys = [info.key async for info in storage.list(hls_prefix(file_id))]
    for key in keys:
        await storage.delete(key)
    return len(keys)
