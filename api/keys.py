"""Typed application keys for the infrastructure a running app holds.

Each feature package defines the keys of what it builds beside the class
itself (``api.auth.authn.AUTHENTICATOR``, ``api.cache.glue.CACHE``, …); this
module imports no feature, so any module can import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import redis.asyncio as aioredis
from aiohttp import ClientSession, web

from t2m.enqueue import Enqueuer
from t2m.settings import Settings

if TYPE_CHECKING:
    from t2m.storage.base import Storage

SETTINGS = web.AppKey("settings", Settings)
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
REDIS = web.AppKey("redis", aioredis.Redis)
ENQUEUER = web.AppKey("enqueuer", Enqueuer)
HTTP_CLIENT = web.AppKey("http_client", ClientSession)
STORAGE: web.AppKey[Storage] = web.AppKey("storage")
