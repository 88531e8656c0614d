"""The aiohttp application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import ClientSession, ClientTimeout, web
from aiohttp_apigami import validation_middleware

from api.admin import routes as admin
from api.auth import routes as auth
from api.auth.authn import AUTHENTICATOR, Authenticator
from api.auth.guests import hand_out_guest_token
from api.auth.login_throttle import LoginThrottle
from api.auth.oidc import OidcVerifier
from api.auth.service import AUTH_SERVICE, AuthService
from api.background import background_tasks_ctx
from api.cache import routes as cache_admin
from api.cache.glue import cache_ctx
from api.console import routes as console
from api.files import hls_routes as hls
from api.files import routes as files
from api.jobs import event_routes as events
from api.jobs import routes as jobs
from api.jobs.event_hub import job_event_hub_ctx
from api.keys import DB_POOL, ENQUEUER, HTTP_CLIENT, REDIS, SETTINGS, STORAGE
from api.legacy import routes as legacy
from api.middlewares import name_the_server, request_context_middleware
from api.monitoring import operations_routes as operations
from api.monitoring import routes as monitoring
from api.monitoring import system_routes as system
from api.monitoring.health import health_probe_ctx
from api.monitoring.state import monitoring_ctx, request_metrics_middleware
from api.openapi import setup_openapi
from api.rate_limit import add_rate_headers, rate_limit_middleware
from api.recommendations import routes as feedback
from api.recommendations.scorer import SCORER_CACHE, ScorerCache
from api.reports import routes as reports
from api.videos import routes as videos
from api.voices import routes as voices
from api.webhooks import routes as webhooks
from api.webhooks.service import webhook_service_ctx
from db.pool import create_pool, keep_session
from t2m.broker import build_broker
from t2m.enqueue import Enqueuer
from t2m.redis_client import create_redis
from t2m.settings import Settings
from t2m.storage import build_storage

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[DB_POOL] = await create_pool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        # Handlers use transaction-scoped state only: no reset round trip per release.
        reset=keep_session,
    )
    yield
    await app[DB_POOL].close()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    app[REDIS] = create_redis(app[SETTINGS])
    yield
    await app[REDIS].aclose()


async def _storage(app: web.Application) -> AsyncIterator[None]:
    app[STORAGE] = build_storage(app[SETTINGS])
    yield
    await app[STORAGE].aclose()


async def _broker(app: web.Application) -> AsyncIterator[None]:
    broker = build_broker(app[SETTINGS])
    app[ENQUEUER] = Enqueuer(broker)
    yield
    broker.close()


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    app[HTTP_CLIENT] = ClientSession(timeout=ClientTimeout(total=10, connect=3))
    yield
    await app[HTTP_CLIENT].close()


async def _auth(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    oidc = None
    if settings.oidc_enabled:
        oidc = OidcVerifier(
            app[HTTP_CLIENT],
            jwks_url=settings.oidc_jwks_url,
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
        )
    app[AUTHENTICATOR] = Authenticator(settings, app[DB_POOL], oidc)
    app[AUTH_SERVICE] = AuthService(settings, app[DB_POOL], LoginThrottle(settings, app[REDIS]))
    yield


async def _recommender(app: web.Application) -> AsyncIterator[None]:
    cache = ScorerCache(app[DB_POOL], app[STORAGE], secret=app[SETTINGS].signing_secret)
    app[SCORER_CACHE] = cache
    cache.decisions.start()
    yield
    await cache.decisions.close()  # the last batch of logged decisions


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=settings.max_request_body,
        # request_metrics_middleware first: it times everything and sees the
        # status the client gets.
        middlewares=[
            request_metrics_middleware,
            request_context_middleware,
            rate_limit_middleware,
            validation_middleware,
        ],
    )
    # Settings built in code skip from_env's checks: a half-configured
    # provider must fail here, at start, not at the first sign-in.
    settings.check_oidc()
    app[SETTINGS] = settings
    app.on_response_prepare.append(name_the_server)
    app.on_response_prepare.append(add_rate_headers)
    app.on_response_prepare.append(hand_out_guest_token)
    # Order matters: contexts are closed in reverse, so background tasks finish
    # while the database pool is still open.
    app.cleanup_ctx.extend(
        [
            _database,
            _redis,
            monitoring_ctx,
            cache_ctx,
            job_event_hub_ctx,
            _storage,
            health_probe_ctx,
            _broker,
            webhook_service_ctx,
            _http_client,
            _auth,
            _recommender,
            background_tasks_ctx,
        ]
    )

    for table in (
        auth.routes,
        files.routes,
        hls.routes,
        jobs.routes,
        videos.routes,
        voices.routes,
        system.routes,
        webhooks.routes,
        feedback.routes,
        monitoring.routes,
        cache_admin.routes,
        events.routes,
        admin.routes,
    ):
        _add_prefixed(app, API_PREFIX, table)
    for root_table in (
        legacy.routes,
        reports.routes,
        operations.routes,
        monitoring.root_routes,
        console.root_routes,
    ):
        app.add_routes(root_table)

    setup_openapi(app)
    return app


def _add_prefixed(app: web.Application, prefix: str, table: web.RouteTableDef) -> None:
    for route in table:
        assert isinstance(route, web.RouteDef)
        if route.method == "GET":
            # add_get also answers HEAD, as the root paths do (probes use it).
            app.router.add_get(prefix + route.path, route.handler, **route.kwargs)
        else:
            app.router.add_route(route.method, prefix + route.path, route.handler, **route.kwargs)
