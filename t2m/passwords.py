"""Password hashing with scrypt (memory-hard, in the standard library).

Stored format: ``scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>`` so the cost can
be raised later while old hashes keep verifying.

The cost is OWASP's current guidance for scrypt (N=2^17, r=8, p=1: 128 MiB
per hash).  Hashes made with a lower cost still verify, and
:func:`needs_rehash` tells the login path to store a new hash at today's cost
the next time the owner signs in with the right password (the only moment
the plain password is at hand).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# 128 * r * N bytes of memory per hash: what makes a GPU farm expensive.
_LOG2_N = 17
_R = 8
_P = 1
_DKLEN = 32
# Room for the current cost (128 MiB) with headroom; a stored hash asking
# for more fails to verify rather than exhausting memory.
_MAXMEM = 256 * 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=2**log2_n,
        r=r,
        p=p,
        maxmem=_MAXMEM,
        dklen=_DKLEN,
    )


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _derive(password, salt, _LOG2_N, _R, _P)
    return f"scrypt${_LOG2_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    """Constant-time check; a missing or malformed hash verifies nothing."""
    if not stored:
        # Spend the same work as a real check so timing does not reveal
        # whether the account exists.
        _derive(password, b"\0" * 16, _LOG2_N, _R, _P)
        return False
    try:
        scheme, log2_n, r, p, salt_b64, hash_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(hash_b64)
        actual = _derive(password, base64.b64decode(salt_b64), int(log2_n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def needs_rehash(stored: str | None) -> bool:
    """True when ``stored`` was made with less than today's cost (or another scheme)."""
    if not stored:
        return False
    try:
        scheme, log2_n, r, p, _salt, _hash = stored.split("$")
        return scheme != "scrypt" or (int(log2_n), int(r), int(p)) < (_LOG2_N, _R, _P)
    except ValueError:
        return True


def generate_password() -> str:
    return secrets.token_urlsafe(18)
