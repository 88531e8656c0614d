"""The base of the stages' "this file cannot be used" exceptions."""

from __future__ import annotations


class UnusableFile(Exception):
    """The file cannot be used by a stage; trying again would not help."""

    retryable = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
