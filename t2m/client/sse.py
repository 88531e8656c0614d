"""Follow a job's Server-Sent Events, reconnecting with Last-Event-ID until ``end``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from t2m.client.errors import ApiError, CliError
from t2m.client.http import Api

# Consecutive failed reconnections before giving up.
MAX_RECONNECTS = 8
# No byte for this long (keep-alives come every 15 s) means a dead connection.
READ_TIMEOUT_S = 45


@dataclass(frozen=True)
class Event:
    id: int | None
    type: str
    data: Any


class EventParser:
    """Turns the lines of a text/event-stream, fed one at a time, into events
    (comments skipped; a block without data is no event)."""

    def __init__(self) -> None:
        self._fields: dict[str, str] = {}
        self._data: list[str] = []

    def feed(self, raw: str) -> Event | None:
        """The event this line completes, if it ends one."""
        line = raw.rstrip("\r\n")
        if line == "":
            fields, data = self._fields, self._data
            self._fields, self._data = {}, []
            if not data:
                return None
            event_id = fields.get("id")
            try:
                payload = json.loads("\n".join(data))
            except ValueError:
                payload = "\n".join(data)
            return Event(
                int(event_id) if event_id and event_id.isdigit() else None,
                fields.get("event", "message"),
                payload,
            )
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        else:
            self._fields[name] = value
        return None


def parse_events(lines: Iterable[str]) -> Iterator[Event]:
    """Events from the lines of a text/event-stream (comments skipped)."""
    parser = EventParser()
    for raw in lines:
        event = parser.feed(raw)
        if event is not None:
            yield event


def follow_job(api: Api, job_id: str) -> Iterator[Event]:
    """Every event of the job up to and including ``end``, across dropped
    connections: each reconnection resumes after the last id received."""
    last_id: int | None = None
    failures = 0
    while True:
        headers = {"Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = str(last_id)
        try:
            response = api.send(
                "GET", f"/api/v1/jobs/{job_id}/events", headers=headers, timeout_s=READ_TIMEOUT_S
            )
            for event in parse_events(response.lines()):
                failures = 0
                if event.id is not None:
                    last_id = event.id
                yield event
                if event.type == "end":
                    response.close()
                    return
        except ApiError as exc:
            if exc.status < 500:
                raise
            error: CliError = exc
        except CliError as exc:
            error = exc
        except OSError as exc:  # the connection dropped mid-stream
            error = CliError(f"connection lost: {exc}")
        else:
            error = CliError("the event stream closed before the job ended")
        failures += 1
        if failures > MAX_RECONNECTS:
            raise CliError(f"gave up following job {job_id}: {error.message}")
        time.sleep(min(10.0, 0.5 * 2 ** (failures - 1)))
