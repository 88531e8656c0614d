"""Guest mode (``ALLOW_ANONYMOUS=true``): each anonymous client is its own guest.

An anonymous caller of a root-path alias gets a guest identity of its own,
carried by a signed token the server hands out on first use — in the
``t2m_guest`` cookie (browsers) and the ``X-Guest-Token`` response header
(scripts, which send it back in the ``X-Guest-Token`` request header).  The
token is ``<guest id>.<HMAC-SHA256 of it>`` under ``SIGNING_SECRET``: it cannot
be forged, so one guest never sees another's uploads.  A missing or invalid
token starts a new guest; the old one's files stay invisible to it.

Each guest is a user row named ``guest-<id>`` (names registration refuses)
that records the client address it was created from.  Rate limits of
anonymous callers are counted per address (``api.rate_limit``), and the
quotas of all guests of one address are summed (``db.quotas``), so dropping
the cookie gives neither a fresh rate budget nor a fresh quota.  Guests
unused for a while are reaped with their files by a maintenance task.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from http.cookies import SimpleCookie

import asyncpg
from aiohttp import hdrs, web

from api.auth.reserved_names import GUEST_PREFIX
from db import users as user_rows
from t2m.settings import Settings

COOKIE = "t2m_guest"
HEADER = "X-Guest-Token"
# A year: a guest's uploads are reachable as long as its browser keeps the cookie.
COOKIE_MAX_AGE_S = 365 * 24 * 3600
_GUEST_ID = re.compile(r"^[0-9a-f]{32}$")
_ISSUED: web.RequestKey[str] = web.RequestKey("issued_guest_token")


def _mac(settings: Settings, guest_id: str) -> str:
    return hmac.new(
        settings.signing_secret.encode(), f"t2m-guest:{guest_id}".encode(), hashlib.sha256
    ).hexdigest()


def guest_token(settings: Settings, guest_id: str) -> str:
    return f"{guest_id}.{_mac(settings, guest_id)}"


def guest_id_of(settings: Settings, token: str | None) -> str | None:
    """The guest id a token proves, or None for a missing, malformed or forged one."""
    if not token:
        return None
    guest_id, _, mac = token.strip().partition(".")
    if not _GUEST_ID.match(guest_id) or not hmac.compare_digest(mac, _mac(settings, guest_id)):
        return None
    return guest_id


def presented_token(request: web.Request) -> str | None:
    return request.headers.get(HEADER) or request.cookies.get(COOKIE)


async def guest_row(request: web.Request, settings: Settings, pool: asyncpg.Pool) -> asyncpg.Record:
    """This client's guest user, created (and its token handed out) on first use."""
    guest_id = guest_id_of(settings, presented_token(request))
    if guest_id is None:
        guest_id = secrets.token_hex(16)
        request[_ISSUED] = guest_token(settings, guest_id)
    async with pool.acquire() as conn:
        return await user_rows.ensure_guest(
            conn,
            username=f"{GUEST_PREFIX}{guest_id}",
            email=f"{GUEST_PREFIX}{guest_id}@guest.invalid",
            address=request.remote or "-",
        )


async def hand_out_guest_token(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: a new guest learns its token from the answer."""
    token = request.get(_ISSUED)
    if token is None:
        return
    response.headers[HEADER] = token
    # Written as a header: by the time this hook runs, the response's cookie
    # jar has already been turned into headers.
    cookie = SimpleCookie()
    cookie[COOKIE] = token
    morsel = cookie[COOKIE]
    morsel["max-age"] = COOKIE_MAX_AGE_S
    morsel["path"] = "/"
    morsel["httponly"] = True
    morsel["samesite"] = "Strict"
    if request.secure:
        morsel["secure"] = True
    response.headers.add(hdrs.SET_COOKIE, morsel.OutputString())
