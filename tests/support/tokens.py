"""Access tokens made directly, for the cases the API never issues (expired,
foreign issuer, another role)."""

from __future__ import annotations

from typing import Any

from t2m.settings import Settings
from t2m.tokens import TokenKind, issue_token


def access_token(
    settings: Settings,
    subject: str,
    *,
    role: str = "USER",
    kind: TokenKind = "access",
    ttl_s: int = 60,
    now: float | None = None,
    issuer: str | None = None,
    secret: str | None = None,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    """A token signed as the API signs them, unless told otherwise."""
    return issue_token(
        secret=settings.jwt_secret if secret is None else secret,
        issuer=settings.jwt_issuer if issuer is None else issuer,
        subject=subject,
        role=role,
        kind=kind,
        ttl_s=ttl_s,
        now=now,
        extra_claims=extra_claims,
    ).token
