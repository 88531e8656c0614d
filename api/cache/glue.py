"""The aiohttp side of the read-through cache (the engine is :mod:`t2m.cache`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from api.keys import REDIS, SETTINGS
from t2m.cache import CachedRead, ReadThroughCache

CACHE = web.AppKey("cache", ReadThroughCache)


def cached_json(read: CachedRead, *, envelope: bool) -> web.Response:
    """The response for a cached read: the stored text, unparsed."""
    body = f'{{"success": true, "data": {read.json_text}}}' if envelope else read.json_text
    return web.Response(
        text=body, content_type="application/json", headers={"X-Cache": read.outcome.upper()}
    )


async def after_write(request: web.Request, *owner_ids: str | None) -> None:
    """Retire the cached reads of these owners (and the admin-wide views).

    Await it after the write has committed and before answering, so the
    writer's next read cannot hit an entry from before its write.
    """
    await request.config_dict[CACHE].invalidate_owners(*owner_ids)


async def cache_ctx(app: web.Application) -> AsyncIterator[None]:
    app[CACHE] = ReadThroughCache(app[REDIS], app[SETTINGS])
    yield
