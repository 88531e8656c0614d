"""JWTs issued by T2M itself (HS256 access, refresh and job-events tokens)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from t2m.errors import AuthExpired, AuthInvalid
from t2m.ids import new_id

# "events": a short-lived token scoped to one job's event stream (claim "job"),
# for browsers' EventSource, which cannot send an Authorization header.
TokenKind = Literal["access", "refresh", "events"]
ALGORITHM = "HS256"


@dataclass(frozen=True)
class IssuedToken:
    token: str
    jti: str
    expires_at: int


def issue_token(
    *,
    secret: str,
    issuer: str,
    subject: str,
    role: str,
    kind: TokenKind,
    ttl_s: int,
    now: float | None = None,
    extra_claims: dict[str, Any] | None = None,
) -> IssuedToken:
    issued_at = int(now if now is not None else time.time())
    jti = new_id("tok")
    claims = {
        "iss": issuer,
        "sub": subject,
        "role": role,
        "typ": kind,
        "jti": jti,
        "iat": issued_at,
        "exp": issued_at + ttl_s,
        **(extra_claims or {}),
    }
    return IssuedToken(jwt.encode(claims, secret, algorithm=ALGORITHM), jti, issued_at + ttl_s)


def decode_token(token: str, *, secret: str, issuer: str, kind: TokenKind) -> dict[str, Any]:
    """Verify signature, expiry, issuer and kind; map every failure to a spec code."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            # Pinning the algorithm is what refuses alg=none and RS/HS confusion.
            algorithms=[ALGORITHM],
            issuer=issuer,
            options={"require": ["exp", "iat", "sub", "jti", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthExpired("Token has expired") from exc
    except jwt.InvalidIssuerError as exc:
        raise AuthInvalid("Token issuer is not accepted") from exc
    except jwt.PyJWTError as exc:
        raise AuthInvalid("Token is invalid or malformed") from exc
    if claims.get("typ") != kind:
        raise AuthInvalid(f"Expected a {kind} token")
    return claims
