"""Opaque, prefixed identifiers (``file_3f9c…``), readable in logs and URLs.

An id is checked with ``fullmatch``: ``re.match`` with ``$`` also accepts a
trailing newline, and an id that passed the check flows into storage keys,
log lines and signed values where a newline is a separator.
"""

from __future__ import annotations

import re
import secrets

_ID_SHAPE = re.compile(r"[a-z]{2,8}_[0-9a-f]{24}")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def is_id(value: str, prefix: str | None = None) -> bool:
    """True when ``value`` has the shape of an id (and the given prefix)."""
    if not _ID_SHAPE.fullmatch(value):
        return False
    return prefix is None or value.startswith(prefix + "_")
