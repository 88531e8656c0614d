"""Single flight: identical concurrent reads in one process share one computation.

The first caller for a key runs the computation; callers arriving while it
is in flight await the same future instead of running it again.  Keys embed
the cache generation, so a request made after a write never joins a flight
that started before it.  Coalescing is per process: each API process
computes a cold key at most once at a time; across processes the Redis
cache makes the later ones hits.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class SingleFlight:
    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Future[Any]] = {}
        # Per kind of read: computations run, and requests that joined one.
        self.computations: Counter[str] = Counter()
        self.coalesced: Counter[str] = Counter()

    def in_flight(self) -> int:
        return len(self._flights)

    async def run(self, key: str, kind: str, compute: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """The value, and whether this call ran the computation (False: it joined one)."""
        flight = self._flights.get(key)
        started = flight is None
        if flight is None:
            # A task of its own, not the first caller's: that caller going
            # away (client disconnected) must not cancel what others await.
            flight = asyncio.ensure_future(compute())
            self._flights[key] = flight
            self.computations[kind] += 1
            flight.add_done_callback(lambda done: self._landed(key, done))
        else:
            self.coalesced[kind] += 1
        result: T = await asyncio.shield(flight)
        return result, started

    def _landed(self, key: str, flight: asyncio.Future[Any]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved: every waiter may have gone

    def stats(self) -> dict[str, Any]:
        kinds = sorted(set(self.computations) | set(self.coalesced))
        return {
            "in_flight": self.in_flight(),
            "computations": sum(self.computations.values()),
            "coalesced": sum(self.coalesced.values()),
            "by_kind": {
                k: {"computations": self.computations[k], "coalesced": self.coalesced[k]}
                for k in kinds
            },
        }
