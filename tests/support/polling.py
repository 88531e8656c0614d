"""Wait, bounded, for something another process or task will make true."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")


@overload
async def until(
    check: Callable[[], Awaitable[T | None]],
    what: str,
    *,
    timeout_s: float = ...,
    interval_s: float = ...,
) -> T: ...


@overload
async def until(
    check: Callable[[], T | None],
    what: str,
    *,
    timeout_s: float = ...,
    interval_s: float = ...,
) -> T: ...


async def until(
    check: Callable[[], Awaitable[T | None] | T | None],
    what: str,
    *,
    timeout_s: float = 60.0,
    interval_s: float = 0.05,
) -> T:
    """Call ``check`` until it returns something truthy, and return that.

    The bound is a failure, not a measurement: it only stops a test that
    would otherwise hang, with ``what`` saying what never happened.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(interval_s)


def wait_for(
    predicate: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.1
) -> T:
    """:func:`until` for code without an event loop (process and thread helpers)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)
