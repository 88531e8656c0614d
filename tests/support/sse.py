"""Read Server-Sent Events from an aiohttp client response, event by event,
with the command-line client's parser (:mod:`t2m.client.sse`)."""

from __future__ import annotations

import aiohttp

from t2m.client.sse import Event, EventParser

__all__ = ["Event", "next_event", "read_until_end"]


async def next_event(response: aiohttp.ClientResponse) -> Event | None:
    """The next event, skipping comments; None at the end of the stream."""
    # A fresh parser is enough: this returns only between events.
    parser = EventParser()
    while True:
        raw = await response.content.readline()
        if not raw:
            return None
        event = parser.feed(raw.decode())
        if event is not None:
            return event


async def read_until_end(response: aiohttp.ClientResponse) -> list[Event]:
    events: list[Event] = []
    while (event := await next_event(response)) is not None:
        events.append(event)
    return events
