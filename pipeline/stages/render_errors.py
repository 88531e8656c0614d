"""Exceptions of the render stage.

Workers decide on retries with ``permanent``: a permanent failure (bad
input, unusable asset, impossible options) fails the job at once; a
transient one (out of memory or disk, the process killed, a timeout) is
worth another try.
"""

from __future__ import annotations

from typing import Any

from t2m.errors import T2MError


class RenderError(T2MError):
    code = "RENDER_FAILED"
    status = 500
    default_message = "Video rendering failed"

    def __init__(self, message: str, *, permanent: bool, details: Any = None) -> None:
        super().__init__(message, details)
        self.permanent = permanent
        self.retryable = not permanent


class RenderCancelled(RenderError):
    """The caller asked to stop; partial outputs have been removed."""

    code = "CANCELLED"
    default_message = "Rendering was cancelled"

    def __init__(self, message: str = "rendering was cancelled") -> None:
        super().__init__(message, permanent=True)


class RenderTimeout(RenderError):
    """ffmpeg ran longer than the caller allowed; it was killed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=False)
