"""Every scheduled job, in one list.

A job only enqueues a maintenance actor, so the work runs (and is retried)
on the workers, and several scheduler copies never do it twice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    interval_s: int


SCHEDULED_JOBS: tuple[ScheduledJob, ...] = (
    ScheduledJob("expire_revoked_tokens", 3600),
    ScheduledJob("requeue_webhook_deliveries", 60),
    ScheduledJob("clean_tmp", 3600),
    ScheduledJob("rotate_logs", 24 * 3600),
    ScheduledJob("reap_stuck_jobs", 300),
    ScheduledJob("purge_deleted", 6 * 3600),
)
