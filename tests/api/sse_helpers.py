"""Moved to :mod:`tests.support.sse`; kept for imports of the old path."""

from tests.support.sse import Event, next_event, read_until_end

__all__ = ["Event", "next_event", "read_until_end"]
