"""A bounded memory of the local access tokens whose signature has been verified.

Parsing a JWT and checking its HS256 signature is the costliest step of
authenticating a request, more than the database lookup that follows it.
For a given token string the outcome never changes except by expiry, which
is checked again on every use; revocation and the account's state are not
remembered here (they are read from the database on every request).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

DEFAULT_SIZE = 4096


class VerifiedTokens:
    """Least-recently-used map of token string → verified claims."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._claims: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def get(self, token: str) -> dict[str, Any] | None:
        """The token's claims if it was verified and has not expired since."""
        claims = self._claims.get(token)
        if claims is None:
            return None
        if claims["exp"] <= time.time():
            # Forget it: a full decode then reports the expiry as usual.
            del self._claims[token]
            return None
        self._claims.move_to_end(token)
        return claims

    def remember(self, token: str, claims: dict[str, Any]) -> None:
        self._claims[token] = claims
        self._claims.move_to_end(token)
        if len(self._claims) > self._size:
            self._claims.popitem(last=False)

    def __len__(self) -> int:
        return len(self._claims)
