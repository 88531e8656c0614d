"""The states of a video job (``jobs.status``; the migration's CHECK lists the same).

A job is ``queued`` until its first stage starts, ``processing`` while any
stage runs or waits for the next, and ends ``completed``, ``failed`` or
``cancelled``.  Members are strings, so rows, JSON and SQL parameters take
them as they are.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# A job still owed work (it counts against the live-jobs quota).
LIVE: tuple[JobStatus, ...] = (JobStatus.QUEUED, JobStatus.PROCESSING)
FINISHED: tuple[JobStatus, ...] = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
