"""Per-caller request limits, counted in Redis so every API process shares them.

Each request falls in exactly one bucket (uploads, video generation, system
endpoints, or general) and is counted against ``(bucket, caller, window)``
with one atomic Lua call: INCR and, for the first hit of the window, PEXPIRE.
INCR is atomic, so of N concurrent requests at most ``limit`` see a count at
or under the limit, whichever process they reach.  A fixed window keeps it to
one key and one round trip per request.

The caller is the ``sub`` of a valid local access token (signature checked
here, cheaply and without the database); anything else — no token, an
external or bad token — is counted per client address, so garbage tokens
cannot mint fresh buckets.  Anonymous root-path (guest) callers get the
limits divided by ``rate_limit_guest_divisor``.

If Redis is unreachable the request proceeds (fail open): rate limiting
protects capacity and must not turn a Redis outage into a full API outage.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass

import redis.exceptions
from aiohttp import web
from aiohttp.typedefs import Handler

from api.auth.authn import bearer_token
from api.keys import REDIS, SETTINGS
from t2m import errors
from t2m.redis_client import redis_key
from t2m.settings import Settings
from t2m.tokens import decode_token

log = logging.getLogger(__name__)

# Returns {count, ms until the window key expires}.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return {count, redis.call('PTTL', KEYS[1])}
"""

_UPLOAD_PATHS = frozenset({"/api/v1/files/upload", "/api/v1/files/batch-upload", "/upload"})
_VIDEO_PATHS = frozenset({"/api/v1/videos/generate", "/generate-video"})
_SYSTEM_PREFIX = "/api/v1/system/"
# Docs, the machine-readable spec and the console's files are static;
# limiting them helps nobody.
_EXEMPT_PREFIXES = ("/api/docs", "/api/v1/openapi.json", "/docs", "/console/")
# Health probes come from load balancers and orchestrators, every few seconds
# from one address, forever: counting them would mark a healthy instance dead
# once the guest budget runs out.  Their answers are cached (readiness) or free
# (liveness), so they cost nothing to leave unlimited.
HEALTH_PATHS = frozenset(
    {
        "/health",
        "/health/live",
        "/api/v1/system/health",
        "/api/v1/system/health/live",
        "/api/v1/auth/health",
    }
)


# The media of a signed HLS tree (segments, init segments, the sprite, the
# caption file) are verified by their HMAC alone: counting them would put a
# Redis round trip on every segment, and a player fetches one every few
# seconds per viewer.  The playlists, which lead to them, are counted.
_SIGNED_HLS_MEDIA = re.compile(
    r"/api/v1/files/secure/[^/]+/hls/(?:[^?]+\.(?:m4s|mp4|jpg)|subs/subtitles\.vtt)", re.ASCII
)


def is_exempt(path: str) -> bool:
    return (
        path in HEALTH_PATHS
        or path.startswith(_EXEMPT_PREFIXES)
        or _SIGNED_HLS_MEDIA.fullmatch(path) is not None
    )


_NOUNS = {
    "general": "requests",
    "uploads": "uploads",
    "video": "video generations",
    "system": "system requests",
}


@dataclass(frozen=True)
class RateState:
    bucket: str
    limit: int
    remaining: int
    reset_at: int  # epoch seconds when the window ends
    retry_after_s: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


RATE_STATE = web.RequestKey("rate_limit_state", RateState)


def bucket_of(method: str, path: str) -> str:
    if method == "POST" and path in _UPLOAD_PATHS:
        return "uploads"
    if method == "POST" and path in _VIDEO_PATHS:
        return "video"
    if path.startswith(_SYSTEM_PREFIX):
        return "system"
    return "general"


def limit_of(settings: Settings, bucket: str, *, guest: bool) -> int:
    limit = {
        "uploads": settings.rate_limit_uploads,
        "video": settings.rate_limit_video,
        "system": settings.rate_limit_system,
    }.get(bucket, settings.rate_limit_general)
    if guest:
        limit = max(1, limit // max(1, settings.rate_limit_guest_divisor))
    return limit


def caller_of(request: web.Request, settings: Settings) -> tuple[str, bool]:
    """``(identity, is_anonymous)``; identity never depends on unverified input."""
    try:
        token = bearer_token(request)
    except errors.T2MError:
        token = None
    if token is not None:
        try:
            claims = decode_token(
                token, secret=settings.jwt_secret, issuer=settings.jwt_issuer, kind="access"
            )
            return f"user:{claims['sub']}", False
        except errors.T2MError:
            # External (OIDC) or invalid token: counted per address.
            return f"addr:{request.remote or '-'}", False
    return f"addr:{request.remote or '-'}", True


def exceeded_message(state: RateState, window_s: int) -> str:
    period = "hour" if window_s == 3600 else f"{window_s} seconds"
    wait = state.retry_after_s
    if wait >= 60:
        minutes = math.ceil(wait / 60)
        when = f"{minutes} minute{'s' if minutes != 1 else ''}"
    else:
        when = f"{wait} second{'s' if wait != 1 else ''}"
    return (
        f"You have exceeded the limit of {state.limit} {_NOUNS[state.bucket]} "
        f"per {period}. Try again in {when}."
    )


async def hit(request: web.Request, settings: Settings) -> tuple[RateState, bool] | None:
    """Count this request: its state and whether it is allowed; ``None`` when
    Redis is unavailable (fail open)."""
    bucket = bucket_of(request.method, request.path)
    caller, anonymous = caller_of(request, settings)
    guest = anonymous and not request.path.startswith("/api/")
    limit = limit_of(settings, bucket, guest=guest)
    window_s = settings.rate_limit_window_s
    now = time.time()
    window = int(now // window_s)
    key = redis_key(settings, "rl", bucket, caller, str(window))
    try:
        count, ttl_ms = await request.config_dict[REDIS].eval(_HIT, 1, key, window_s * 1000)
    except (redis.exceptions.RedisError, OSError) as exc:
        log.warning("rate limiting skipped, Redis unavailable: %r", exc)
        return None
    reset_at = (window + 1) * window_s
    ttl_s = math.ceil(int(ttl_ms) / 1000) if int(ttl_ms) > 0 else reset_at - int(now)
    state = RateState(bucket, limit, max(0, limit - int(count)), reset_at, max(1, ttl_s))
    return state, int(count) <= limit


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.config_dict[SETTINGS]
    if not settings.rate_limit_enabled or is_exempt(request.path):
        return await handler(request)
    counted = await hit(request, settings)
    if counted is None:
        return await handler(request)
    state, allowed = counted
    request[RATE_STATE] = state
    if not allowed:
        raise errors.RateLimited(
            "Rate limit exceeded",
            exceeded_message(state, settings.rate_limit_window_s),
            headers={"Retry-After": str(state.retry_after_s)},
        )
    return await handler(request)


async def add_rate_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every answer — streamed, error or not — carries
    the caller's budget, added just before the headers leave."""
    state = request.get(RATE_STATE)
    if state is not None:
        response.headers.update(state.headers())
