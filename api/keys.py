"""Typed application keys for the resources a running app holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import redis.asyncio as aioredis
from aiohttp import ClientSession, web

from t2m.enqueue import Enqueuer
from t2m.settings import Settings

if TYPE_CHECKING:
    from api.authn import Authenticator
    from t2m.storage.base import Storage

SETTINGS = web.AppKey("settings", Settings)
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
REDIS = web.AppKey("redis", aioredis.Redis)
ENQUEUER = web.AppKey("enqueuer", Enqueuer)
HTTP_CLIENT = web.AppKey("http_client", ClientSession)
AUTHENTICATOR: web.AppKey[Authenticator] = web.AppKey("authenticator")
STORAGE: web.AppKey[Storage] = web.AppKey("storage")

if TYPE_CHECKING:
    from api.auth_service import AuthService
AUTH_SERVICE: web.AppKey[AuthService] = web.AppKey("auth_service")


if TYPE_CHECKING:
    from api.recommendations import ScorerCache
SCORER_CACHE: web.AppKey[ScorerCache] = web.AppKey("scorer_cache")


if TYPE_CHECKING:
    from api.monitoring_state import Monitoring
MONITORING: web.AppKey[Monitoring] = web.AppKey("monitoring")


if TYPE_CHECKING:
    from t2m.cache import ReadThroughCache
CACHE: web.AppKey[ReadThroughCache] = web.AppKey("cache")
