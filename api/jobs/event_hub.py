"""One blocking read per API process for every followed job's event stream.

An event stream that waited in its own blocking ``XREAD`` held a Redis
connection for as long as its client stayed: a thousand followers, a thousand
connections.  The hub keeps one read for all of them.  It watches the streams
that have followers, from the newest entry it has seen of each, and when
entries arrive it wakes that stream's followers, who fetch them with a
non-blocking read from wherever each one is.  Its read blocks for at most
``WATCH_BLOCK_MS``, so a stream gaining its first follower is watched that
soon; until then the follower's own first read covers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from aiohttp import web

from api.keys import REDIS, SETTINGS
from t2m.job_events import JobEvents

log = logging.getLogger(__name__)

WATCH_BLOCK_MS = 250
# After a failed read the hub wakes every follower (each then meets the error
# in its own read and closes its stream, so its client resumes) and retries.
RETRY_S = 1.0


class Watch:
    """A followed stream: the hub's position in it and its followers' wake-up."""

    def __init__(self, after: int) -> None:
        self.seen = after
        self.followers = 0
        self.changed = asyncio.Event()

    async def wait(self, timeout_s: float) -> None:
        """Until entries newer than the last fetch may exist, or ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout_s)


class JobEventHub:
    def __init__(self, client: aioredis.Redis, events: JobEvents) -> None:
        self._client = client
        self._events = events
        self._watches: dict[str, Watch] = {}
        self._someone_waits = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def followed(self) -> int:
        return len(self._watches)

    @contextlib.asynccontextmanager
    async def follow(self, job_id: str, after: int) -> AsyncIterator[Watch]:
        """Watch ``job_id``'s stream while the block runs.

        The caller clears ``watch.changed``, reads without blocking, and waits
        on the watch only when that read found nothing: an entry that lands
        in between sets the event again, so nothing is missed.
        """
        watch = self._watches.get(job_id)
        if watch is None:
            watch = self._watches[job_id] = Watch(after)
        watch.followers += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="job-event-hub")
        self._someone_waits.set()
        try:
            yield watch
        finally:
            watch.followers -= 1
            if watch.followers == 0 and self._watches.get(job_id) is watch:
                del self._watches[job_id]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            if not self._watches:
                self._someone_waits.clear()
                await self._someone_waits.wait()
                continue
            watched = dict(self._watches)
            keys = {self._events.key(job_id): job_id for job_id in watched}
            try:
                answer: Any = await self._client.xread(
                    {key: f"{watched[job_id].seen}-0" for key, job_id in keys.items()},
                    block=WATCH_BLOCK_MS,
                    # Only "something arrived" matters (followers fetch it
                    # themselves); the count just lets the hub jump ahead.
                    count=100,
                )
            except (redis.exceptions.RedisError, OSError) as exc:
                log.warning("job event hub: %r", exc)
                for watch in watched.values():
                    watch.changed.set()
                await asyncio.sleep(RETRY_S)
                continue
            for key, entries in answer or []:
                watch = watched[keys[key.decode() if isinstance(key, bytes) else key]]
                watch.seen = max(watch.seen, _number(entries[-1][0]))
                watch.changed.set()


def _number(entry_id: Any) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return int(text.split("-", 1)[0])


JOB_EVENT_HUB = web.AppKey("job_event_hub", JobEventHub)


async def job_event_hub_ctx(app: web.Application) -> AsyncIterator[None]:
    """Needs ``_redis`` before it (cleanup_ctx order)."""
    app[JOB_EVENT_HUB] = JobEventHub(app[REDIS], JobEvents(app[REDIS], app[SETTINGS]))
    yield
    await app[JOB_EVENT_HUB].close()
