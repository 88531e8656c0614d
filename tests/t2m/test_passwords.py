"""Password hashes: today's scrypt cost, old hashes still verify and get flagged."""

from __future__ import annotations

import base64
import hashlib
import secrets

from t2m.passwords import hash_password, needs_rehash, verify_password


def old_cost_hash(password: str, log2_n: int = 14) -> str:
    """A hash as T2M stored it before the cost was raised."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**log2_n, r=8, p=1, dklen=32)
    return (
        f"scrypt${log2_n}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    )


def test_new_hashes_meet_owasp_scrypt_guidance() -> None:
    scheme, log2_n, r, p, _salt, _digest = hash_password("pw-long-enough").split("$")
    assert scheme == "scrypt"
    assert 2 ** int(log2_n) >= 2**17 and int(r) >= 8 and int(p) >= 1
    assert not needs_rehash(hash_password("pw-long-enough"))


def test_old_hashes_verify_and_need_a_rehash() -> None:
    stored = old_cost_hash("old password")
    assert verify_password("old password", stored)
    assert not verify_password("wrong password", stored)
    assert needs_rehash(stored)


def test_unknown_or_broken_hashes_verify_nothing() -> None:
    assert not verify_password("x", None)
    assert not verify_password("x", "bcrypt$whatever")
    assert not verify_password("x", "scrypt$30$8$1$AAAA$AAAA")  # beyond the memory cap
    assert needs_rehash("bcrypt$1$2$3$4$5") and needs_rehash("garbage")
    assert not needs_rehash(None)
