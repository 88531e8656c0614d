"""Redis replies as text, whichever way the client was made."""

from __future__ import annotations


def redis_text(value: str | bytes) -> str:
    """A key or value as ``str``: clients made with ``decode_responses`` give
    ``str``, others (and pipelines of raw clients) give ``bytes``."""
    return value.decode() if isinstance(value, bytes) else value
