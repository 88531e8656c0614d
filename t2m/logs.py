"""Logging set-up: one request/job id on every line, JSON in production."""

from __future__ import annotations

import collections
import contextlib
import contextvars
import itertools
import json
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: int
    created: float  # epoch seconds
    levelno: int
    level: str
    logger: str
    message: str
    request_id: str
    thread: str | None
    exc: str | None


class RecentLogs(logging.Handler):
    """The last ``capacity`` records of this process, for ``GET /logs``.

    Bounded (a deque), so it costs the same memory however long the process
    runs; ``emit`` runs under the handler lock that ``logging`` holds, and
    readers copy under the same lock, so worker threads may log while a
    request reads.
    """

    # Exception texts can be long; the buffer must stay small.
    MAX_EXC_CHARS = 4000

    def __init__(self, capacity: int = 5000) -> None:
        super().__init__(logging.DEBUG)
        self.records: collections.deque[LogEntry] = collections.deque(maxlen=capacity)
        self.counts: collections.Counter[str] = collections.Counter()
        self._ids = itertools.count(1)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            exc = None
            if record.exc_info:
                exc = logging.Formatter().formatException(record.exc_info)[: self.MAX_EXC_CHARS]
            self.records.append(
                LogEntry(
                    id=next(self._ids),
                    created=record.created,
                    levelno=record.levelno,
                    level=record.levelname,
                    logger=record.name,
                    message=message,
                    request_id=getattr(record, "request_id", None) or request_id_var.get(),
                    thread=record.threadName,
                    exc=exc,
                )
            )
            self.counts[record.levelname] += 1
        except Exception:  # a log call must never raise
            self.handleError(record)

    def snapshot(self) -> list[LogEntry]:
        with self.lock or contextlib.nullcontext():
            return list(self.records)

    def level_counts(self) -> dict[str, int]:
        with self.lock or contextlib.nullcontext():
            return dict(self.counts)


# One buffer per process: the root logger is per process too.
recent_logs = RecentLogs()


def install_recent_logs() -> RecentLogs:
    """Attach the process's buffer to the root logger (idempotent)."""
    root = logging.getLogger()
    if recent_logs not in root.handlers:
        root.addHandler(recent_logs)
    return recent_logs


def configure_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    # The recent-records buffer of an API process survives a reconfiguration.
    kept = [recent_logs] if recent_logs in root.handlers else []
    root.handlers[:] = [handler, *kept]
    root.setLevel(level)
