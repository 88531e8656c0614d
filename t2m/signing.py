"""Signed URLs: HMAC-SHA256 over everything that changes the response.

The signature covers the file id, the user it was issued to, the expiry and
every response-shaping parameter (``inline``, ``size``, ``quality``,
``file_type``), in a canonical order, so changing any of them — including
dropping ``inline=false`` — breaks it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import urlencode

from t2m.errors import PermissionDenied

SIGNED_PARAMETERS = ("file_type", "inline", "quality", "size")


class SignatureInvalid(PermissionDenied):
    code = "SIGNATURE_INVALID"
    default_message = "The signed link is invalid or has been altered"


class SignatureExpired(PermissionDenied):
    code = "SIGNATURE_EXPIRED"
    default_message = "The signed link has expired"


def _canonical(file_id: str, user_id: str, expires: int, params: Mapping[str, str]) -> bytes:
    parts = [f"file_id={file_id}", f"user_id={user_id}", f"expires={expires}"]
    parts += [f"{name}={params[name]}" for name in SIGNED_PARAMETERS if name in params]
    return "\n".join(parts).encode("utf-8")


def sign(secret: str, file_id: str, user_id: str, expires: int, params: Mapping[str, str]) -> str:
    return hmac.new(
        secret.encode("utf-8"), _canonical(file_id, user_id, expires, params), hashlib.sha256
    ).hexdigest()


def signed_query(
    secret: str,
    file_id: str,
    user_id: str,
    expires_in: int,
    params: Mapping[str, str],
    *,
    now: float | None = None,
) -> tuple[str, int]:
    """The query string of a signed link and its expiry (unix seconds)."""
    expires = int((now if now is not None else time.time()) + expires_in)
    kept = {k: v for k, v in params.items() if k in SIGNED_PARAMETERS}
    signature = sign(secret, file_id, user_id, expires, kept)
    query = {"user_id": user_id, "expires": str(expires), **kept, "signature": signature}
    return urlencode(query), expires


def verify(
    secret: str, file_id: str, query: Mapping[str, str], *, now: float | None = None
) -> dict[str, str]:
    """Check a signed link's query; return its signed parameters."""
    try:
        user_id = query["user_id"]
        expires = int(query["expires"])
        signature = query["signature"]
    except (KeyError, ValueError) as exc:
        raise SignatureInvalid() from exc
    unknown = set(query) - {"user_id", "expires", "signature", *SIGNED_PARAMETERS}
    if unknown:
        raise SignatureInvalid(f"Unexpected parameters: {', '.join(sorted(unknown))}")
    params = {k: query[k] for k in SIGNED_PARAMETERS if k in query}
    expected = sign(secret, file_id, user_id, expires, params)
    if not hmac.compare_digest(expected, signature):
        raise SignatureInvalid()
    if expires < (now if now is not None else time.time()):
        raise SignatureExpired()
    return {"user_id": user_id, **params}
