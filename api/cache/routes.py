"""/api/v1/system/cache*, /system/deduplication and /system/optimize.

The GET endpoints take an optional token: anyone gets a public summary
(status and rates, nothing about users), administrators the full detail.
The POST endpoints change the cache or the database and are for
administrators only.  Warm and optimize run through the maintenance task
runner, so each run is recorded in ``maintenance_runs`` like a scheduled one.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp_apigami import docs, request_schema
from marshmallow import Schema, ValidationError
from redis.exceptions import RedisError

from api.auth.authn import optional_user, require_admin, require_user
from api.cache.glue import CACHE
from api.cache.schemas import (
    CacheMetricsSchema,
    CacheReportSchema,
    CacheStatusSchema,
    DeduplicationSchema,
    InvalidateQuerySchema,
    InvalidateResultSchema,
    OptimizeResultSchema,
    WarmQuerySchema,
    WarmResultSchema,
)
from api.common_schemas import BEARER, FORBIDDEN, INVALID, UNAUTHORIZED, envelope, error_doc
from api.keys import DB_POOL
from api.monitoring.operations_routes import maintenance_context
from api.responses import ok
from db import housekeeping
from pipeline.maintenance.registry import run_task
from t2m.cache import ReadThroughCache
from t2m.errors import ServiceUnavailable, ValidationFailed

# Mounted under /api/v1.
routes = web.RouteTableDef()

OPTIONAL_BEARER: list[dict[str, list[str]]] = [{}, {"bearerAuth": []}]
ADMIN_ERRORS: dict[int, dict[str, Any]] = {401: UNAUTHORIZED, 403: FORBIDDEN}
UNAVAILABLE: dict[str, Any] = error_doc("Redis is unreachable (SERVICE_UNAVAILABLE)")
ADMIN_INPUT_ERRORS: dict[int, dict[str, Any]] = {400: INVALID, 503: UNAVAILABLE, **ADMIN_ERRORS}
TOP_SHARED_BLOBS = 10
T = TypeVar("T")


async def _is_admin(request: web.Request) -> bool:
    principal = await optional_user(request)
    return principal is not None and principal.is_admin


def _rate(hits: int, misses: int) -> float | None:
    return round(hits / (hits + misses), 4) if hits + misses else None


async def _metrics(cache: ReadThroughCache, *, full: bool) -> dict[str, Any]:
    counters = await cache.counters()
    hits, misses = counters.get("hits", 0), counters.get("misses", 0)
    metrics: dict[str, Any] = {"hits": hits, "misses": misses, "hit_rate": _rate(hits, misses)}
    if not full:
        return metrics
    kinds = sorted({name.split(":", 1)[1] for name in counters if ":" in name})
    by_kind = {}
    for kind in kinds:
        kind_hits, kind_misses = counters.get(f"hits:{kind}", 0), counters.get(f"misses:{kind}", 0)
        by_kind[kind] = {
            "hits": kind_hits,
            "misses": kind_misses,
            "sets": counters.get(f"sets:{kind}", 0),
            "hit_rate": _rate(kind_hits, kind_misses),
        }
    return {
        **metrics,
        "sets": counters.get("sets", 0),
        # What administrators invalidated; writes' bumps are in the
        # status counters as "write_invalidations".
        "invalidations": counters.get("invalidations", 0),
        "by_kind": by_kind,
        "coalescing": cache.flights.stats(),
        "process": _process(cache),
    }


def _process(cache: ReadThroughCache) -> dict[str, Any]:
    """What only this API process knows (Redis errors cannot be counted in Redis)."""
    return {"redis_errors": cache.errors, "bypassed_reads": cache.bypassed}


async def _memory(cache: ReadThroughCache) -> dict[str, Any]:
    info = await cache.client.info("memory")
    return {
        "used_memory": info.get("used_memory"),
        "used_memory_human": info.get("used_memory_human"),
        "maxmemory": info.get("maxmemory"),
        "maxmemory_policy": info.get("maxmemory_policy"),
    }


@routes.get("/system/cache")
@docs(
    tags=["system"],
    summary="Cache status (administrators also get TTLs, key layout, counters, memory)",
    security=OPTIONAL_BEARER,
    responses={
        200: {"schema": envelope(CacheStatusSchema, "CacheStatus"), "description": "Status"},
        401: UNAUTHORIZED,
    },
)
async def cache_status(request: web.Request) -> web.Response:
    full = await _is_admin(request)
    cache = request.config_dict[CACHE]
    try:
        return ok(await _status(cache, full=full))
    except RedisError as exc:
        return ok(
            {
                "enabled": True,
                "backend": "redis",
                "status": "unavailable",
                "hit_rate": None,
                "detail": f"Redis: {type(exc).__name__}" if full else "Redis is unreachable",
            }
        )


async def _status(cache: ReadThroughCache, *, full: bool) -> dict[str, Any]:
    metrics = await _metrics(cache, full=False)
    data: dict[str, Any] = {
        "enabled": True,
        "backend": "redis",
        "status": "ok",
        "hit_rate": metrics["hit_rate"],
    }
    if full:
        data |= {
            "ttl_s": dict(cache.ttl_s),
            "key_layout": cache.key_layout(),
            "invalidation": "per-owner generation counters bumped after every write that"
            " changes what the owner (or an admin) reads; download and stream counters"
            " bump only the file owner's, so admin-wide and global views show them"
            " within one TTL; entries of older generations are unreachable and expire"
            " by TTL",
            "counters": await cache.counters(),
            "process": _process(cache) | {"in_flight": cache.flights.in_flight()},
            "memory": await _memory(cache),
        }
    return data


@routes.get("/system/cache/metrics")
@docs(
    tags=["system"],
    summary="Cache hits, misses and hit rate (administrators: by kind, sets,"
    " invalidations, coalescing)",
    security=OPTIONAL_BEARER,
    responses={
        200: {"schema": envelope(CacheMetricsSchema, "CacheMetrics"), "description": "Metrics"},
        401: UNAUTHORIZED,
        503: UNAVAILABLE,
    },
)
async def cache_metrics(request: web.Request) -> web.Response:
    full = await _is_admin(request)
    return ok(await _guarded(_metrics(request.config_dict[CACHE], full=full)))


async def _guarded(result: Awaitable[T]) -> T:
    """``result``, with a Redis failure answered as 503 rather than 500."""
    try:
        return await result
    except RedisError as exc:
        raise ServiceUnavailable("The cache (Redis) is unreachable") from exc


@routes.get("/system/cache/report")
@docs(
    tags=["system"],
    summary="Cache report: summary for anyone; administrators also get live/stale entries by"
    " kind, memory and recommendations",
    security=OPTIONAL_BEARER,
    responses={
        200: {"schema": envelope(CacheReportSchema, "CacheReport"), "description": "Report"},
        401: UNAUTHORIZED,
        503: UNAVAILABLE,
    },
)
async def cache_report(request: web.Request) -> web.Response:
    full = await _is_admin(request)
    cache = request.config_dict[CACHE]
    metrics = await _guarded(_metrics(cache, full=full))
    rate = metrics["hit_rate"]
    total = metrics["hits"] + metrics["misses"]
    summary = (
        f"{total} cached reads, hit rate {rate:.1%}" if rate is not None else "No cached reads yet"
    )
    data: dict[str, Any] = {"status": "ok", "hit_rate": rate, "summary": summary}
    if full:
        entries = await _guarded(cache.scan_entries())
        data |= {
            "metrics": metrics,
            "entries": entries,
            "memory": await _guarded(_memory(cache)),
            "recommendations": _recommendations(metrics, entries),
        }
    return ok(data)


def _recommendations(metrics: dict[str, Any], entries: dict[str, Any]) -> list[str]:
    advice = []
    for kind, figures in metrics["by_kind"].items():
        rate, reads = figures["hit_rate"], figures["hits"] + figures["misses"]
        if rate is not None and reads >= 100 and rate < 0.2:
            advice.append(
                f"{kind}: hit rate {rate:.0%} - its data changes about as often as it is"
                " read; caching it buys little"
            )
    if entries["stale"] > max(1000, entries["live"]):
        advice.append(
            f"{entries['stale']} stale entries wait for their TTL: POST /system/optimize"
            " prunes them now"
        )
    if not advice:
        advice.append("No action needed")
    return advice


@routes.get("/system/deduplication")
@docs(
    tags=["system"],
    summary="Deduplication savings: among your own files (administrators: the whole"
    " store, with blob counts, most shared blobs and request coalescing)",
    description=(
        "Content is stored once however many files hold it, but that is never"
        " observable across accounts: a user's figures count only their own files"
        " (identical bytes uploaded twice by them), so they do not change when someone"
        " else stores the same bytes."
    ),
    security=BEARER,
    responses={
        200: {
            "schema": envelope(DeduplicationSchema, "Deduplication"),
            "description": "Savings",
        },
        401: UNAUTHORIZED,
    },
)
async def deduplication(request: web.Request) -> web.Response:
    principal = await require_user(request)
    async with request.config_dict[DB_POOL].acquire() as conn:
        if not principal.is_admin:
            own = await housekeeping.own_dedup_stats(conn, principal.user_id)
            return ok({"scope": "own", **own})
        blobs = await housekeeping.dedup_stats(conn)
        top = await housekeeping.top_shared_blobs(conn, TOP_SHARED_BLOBS)
    coalescing = request.config_dict[CACHE].flights.stats()
    return ok(
        {
            "scope": "global",
            "saved_bytes": blobs["saved_bytes"],
            "dedup_ratio": blobs["dedup_ratio"],
            "coalesced_requests": coalescing["coalesced"],
            "blobs": blobs,
            "top_shared_blobs": top,
            "coalescing": coalescing,
        }
    )


async def _form_or_query(request: web.Request, schema: Schema) -> dict[str, Any]:
    """Query parameters, or the same fields sent as a form body (as in
    ``curl -d pattern=...``); the query wins."""
    data: dict[str, Any] = dict(request["data"])
    if request.content_type == "application/x-www-form-urlencoded" and request.can_read_body:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        try:
            data = {**schema.load(form, unknown="exclude"), **data}
        except ValidationError as exc:
            raise ValidationFailed("Request validation failed", exc.normalized_messages()) from exc
    return data


@routes.post("/system/cache/invalidate")
@docs(
    tags=["system"],
    summary="Invalidate cached reads: one user's (user_id), keys matching a pattern, or"
    " everything when neither is given (admin)",
    security=BEARER,
    responses={
        200: {
            "schema": envelope(InvalidateResultSchema, "CacheInvalidation"),
            "description": "What was invalidated",
        },
    }
    | ADMIN_INPUT_ERRORS,
)
@request_schema(InvalidateQuerySchema, location="querystring")
async def invalidate(request: web.Request) -> web.Response:
    await require_admin(request)
    data = await _form_or_query(request, InvalidateQuerySchema())
    cache = request.config_dict[CACHE]
    user_id, pattern = data.get("user_id"), data.get("pattern")
    result: dict[str, Any] = {"user_id": user_id, "pattern": None, "epoch": None}
    if user_id is not None:
        await _guarded(cache.invalidate_user(user_id))
    if pattern is not None:
        result["pattern"] = await _guarded(cache.invalidate_pattern(pattern))
    if user_id is None and pattern is None:
        result["epoch"] = await _guarded(cache.invalidate_all())
    parts = [name for name, given in (("user", user_id), ("pattern", pattern)) if given]
    result["scope"] = "+".join(parts) or "all"
    return ok(result, "Cache invalidated")


@routes.post("/system/cache/warm")
@docs(
    tags=["system"],
    summary="Recompute the report aggregates and first listing pages read most (admin)",
    security=BEARER,
    responses={
        200: {"schema": envelope(WarmResultSchema, "CacheWarm"), "description": "What was warmed"},
    }
    | ADMIN_INPUT_ERRORS,
)
@request_schema(WarmQuerySchema, location="querystring")
async def warm(request: web.Request) -> web.Response:
    await require_admin(request)
    users = request["data"]["users"]
    result = await _guarded(run_task(maintenance_context(request.app), "warm_cache", users=users))
    return ok(result, "Cache warmed")


@routes.post("/system/optimize")
@docs(
    tags=["system"],
    summary="Refresh planner statistics of the hot tables (ANALYZE) and prune unreachable"
    " cache entries; answers what was done (admin)",
    security=BEARER,
    responses={
        200: {
            "schema": envelope(OptimizeResultSchema, "Optimize"),
            "description": "What was done",
        },
        503: UNAVAILABLE,
    }
    | ADMIN_ERRORS,
)
async def optimize(request: web.Request) -> web.Response:
    await require_admin(request)
    result = await _guarded(run_task(maintenance_context(request.app), "optimize"))
    return ok(result, "Optimized")
