"""A job's live events: a bounded, resumable history in one Redis Stream per job.

Workers and the API append events (stage changes, progress, log lines, and
one terminal ``end``); the API's Server-Sent Events endpoint reads them.  A
Redis Stream gives ids, history and blocking reads in one structure and works
across any number of API and worker processes.

Entry ids are ``<n>-0`` with ``n`` counting 1, 2, 3 … per job, assigned
atomically by a Lua script, so ``n`` is the SSE event id clients resume from.
The script also refuses anything after ``end``: the terminal event is always
the last entry, which is what lets a reader stop there.

Appending never blocks or fails a stage: :meth:`JobEvents.publish` logs a
Redis failure and returns, and after one failure it stops trying for a few
seconds so a dead Redis does not add a timeout to every progress update.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from t2m import job_status as statuses
from t2m.redis_client import redis_key
from t2m.settings import Settings

log = logging.getLogger(__name__)

STATUS, PROGRESS, STAGE, LOG, END = "status", "progress", "stage", "log", "end"
EVENT_TYPES = (STATUS, PROGRESS, STAGE, LOG, END)
FINISHED = statuses.FINISHED

# Entries kept per job (approximately: MAXLEN ~ trims whole radix nodes).
HISTORY_MAX = 1000
# A live job's history outlives any plausible render; a finished one is kept
# long enough for a client to reconnect and see the end.
LIVE_TTL_S = 7 * 24 * 3600
ENDED_TTL_S = 24 * 3600
# After a Redis failure, publishing is skipped this long.
BACKOFF_S = 5.0

# KEYS[1] stream; ARGV: maxlen, type, data, live ttl, ended ttl.
# Returns n (> 0) for the appended entry, or -n when the stream already ended
# with entry n (nothing appended).
_APPEND = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local n = 1
if #last > 0 then
  local last_n = tonumber(string.match(last[1][1], '^(%d+)'))
  local fields = last[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'type' and fields[i + 1] == 'end' then
      return -last_n
    end
  end
  n = last_n + 1
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], n .. '-0', 'type', ARGV[2], 'data', ARGV[3])
if ARGV[2] == 'end' then
  redis.call('EXPIRE', KEYS[1], ARGV[5])
else
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
return n
"""


@dataclass(frozen=True)
class JobEvent:
    id: int
    type: str
    data: dict[str, Any]

    def encoded_data(self) -> str:
        return json.dumps(self.data, ensure_ascii=False, default=str)


def _entry_number(entry_id: Any) -> int:
    return int(str(entry_id).split("-", 1)[0])


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def end_data(job: Mapping[str, Any]) -> dict[str, Any]:
    """The terminal event's data, from a finished job row."""
    data: dict[str, Any] = {"status": job["status"], "progress": job["progress"]}
    if job["status"] == "failed" and job["error"]:
        data["error"] = job["error"]
    if job["status"] == "completed":
        data["output_file_id"] = job["output_file_id"]
    return data


def log_data(level: str, message: str, stage: str | None) -> dict[str, Any]:
    return {"level": level, "message": message, "stage": stage, "timestamp": now_iso()}


class JobEvents:
    """Append to and read from the per-job event streams.

    ``client`` may be ``None`` (no Redis configured): publishing is then a no-op.
    """

    def __init__(self, client: aioredis.Redis | None, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self._skip_until = 0.0

    @property
    def backing_off(self) -> bool:
        """Whether publishing is suspended after a recent Redis failure."""
        return time.monotonic() < self._skip_until

    def key(self, job_id: str) -> str:
        return redis_key(self.settings, "job-events", job_id)

    async def append(self, job_id: str, event_type: str, data: Mapping[str, Any]) -> int:
        """Append one event; returns its id, or minus the id of the ``end``
        that already closed the stream.  Raises on Redis failure."""
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown job event type {event_type!r}")
        assert self.client is not None
        result = await self.client.eval(
            _APPEND,
            1,
            self.key(job_id),
            HISTORY_MAX,
            event_type,
            json.dumps(dict(data), ensure_ascii=False, default=str),
            LIVE_TTL_S,
            ENDED_TTL_S,
        )
        return int(result)

    async def publish(self, job_id: str, event_type: str, data: Mapping[str, Any]) -> None:
        """Append, never raising: live events are a convenience, the job row
        and its log table are the truth."""
        if self.client is None or self.backing_off:
            return
        try:
            await self.append(job_id, event_type, data)
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            self._skip_until = time.monotonic() + BACKOFF_S
            log.warning("job %s: %s event not published: %r", job_id, event_type, exc)

    async def publish_log(
        self, job_id: str, level: str, message: str, stage: str | None = None
    ) -> None:
        await self.publish(job_id, LOG, log_data(level, message, stage))

    async def ensure_end(self, job: Mapping[str, Any]) -> int:
        """The id of the job's ``end`` event, appending it from the finished
        row when no one has (a job finished by a path that does not publish,
        such as the stuck-job reaper).  Raises on Redis failure."""
        result = await self.append(job["id"], END, end_data(job))
        return abs(result)

    async def last_id(self, job_id: str) -> int:
        """The id of the newest entry (0 when the job has none)."""
        assert self.client is not None
        entries: Any = await self.client.xrevrange(self.key(job_id), count=1)
        return _entry_number(entries[0][0]) if entries else 0

    async def covers(self, job_id: str, after: int) -> bool:
        """Whether every event with id > ``after`` is still kept, so a client
        that saw ``after`` can resume without a gap."""
        assert self.client is not None
        key = self.key(job_id)
        oldest: Any = await self.client.xrange(key, count=1)
        if not oldest:
            return False
        newest: Any = await self.client.xrevrange(key, count=1)
        return _entry_number(oldest[0][0]) <= after + 1 and after <= _entry_number(newest[0][0])

    async def read_after(
        self, job_id: str, after: int, *, block_ms: int | None = None
    ) -> list[JobEvent]:
        """Events with id > ``after``; with ``block_ms``, waiting that long for one."""
        assert self.client is not None
        answer: Any = await self.client.xread(
            {self.key(job_id): f"{after}-0"}, count=100, block=block_ms
        )
        events: list[JobEvent] = []
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                events.append(
                    JobEvent(_entry_number(entry_id), fields["type"], json.loads(fields["data"]))
                )
        return events
