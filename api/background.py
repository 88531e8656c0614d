"""Fire-and-forget work of the API process that must still finish.

Tasks spawned here (analytics writes after a response) are held until they
end, and the app waits for them on shutdown so nothing is lost or left
writing to a database that is going away.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from aiohttp import web

_tasks: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any]) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def drain(timeout_s: float = 10.0) -> None:
    if _tasks:
        await asyncio.wait(list(_tasks), timeout=timeout_s)


async def background_tasks_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await drain()
