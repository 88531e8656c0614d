"""Moved to :mod:`tests.support.media`; kept for imports of the old path."""

from tests.support.media import *  # noqa: F403
