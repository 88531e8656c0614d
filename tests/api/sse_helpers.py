"""Read Server-Sent Events from an aiohttp client response, event by event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class Event:
    id: int | None
    type: str
    data: Any


async def next_event(response: aiohttp.ClientResponse) -> Event | None:
    """The next event, skipping comments; None at the end of the stream."""
    fields: dict[str, str] = {}
    data: list[str] = []
    while True:
        raw = await response.content.readline()
        if not raw:
            return None
        line = raw.decode().rstrip("\r\n")
        if line == "":
            if data or fields:
                event_id = fields.get("id")
                return Event(
                    int(event_id) if event_id is not None else None,
                    fields.get("event", "message"),
                    json.loads("\n".join(data)),
                )
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        else:
            fields[name] = value


async def read_until_end(response: aiohttp.ClientResponse) -> list[Event]:
    events: list[Event] = []
    while (event := await next_event(response)) is not None:
        events.append(event)
    return events
