"""Every scheduled job, in one list.

A job only enqueues a maintenance actor, so the work runs (and is retried)
on the workers, and several scheduler copies never do it twice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    interval_s: float


SCHEDULED_JOBS: tuple[ScheduledJob, ...] = (
    ScheduledJob("expire_revoked_tokens", 3600),
    ScheduledJob("requeue_webhook_deliveries", 60),
    ScheduledJob("clean_tmp", 3600),
    ScheduledJob("clean_segments", 6 * 3600),
    ScheduledJob("rotate_logs", 24 * 3600),
    ScheduledJob("reap_stuck_jobs", 300),
    ScheduledJob("purge_deleted", 6 * 3600),
    ScheduledJob("reap_guests", 6 * 3600),
    # Recompute the report aggregates (and first listing pages) read most.
    ScheduledJob("warm_cache", 300),
)


def parse_job_overrides(items: list[str]) -> tuple[ScheduledJob, ...]:
    """``NAME=SECONDS`` items: run only these jobs, at these intervals."""
    known = {job.name for job in SCHEDULED_JOBS}
    jobs = []
    for item in items:
        name, _, seconds = item.partition("=")
        name = name.strip()
        if name not in known:
            raise ValueError(f"unknown scheduled job {name!r} (known: {', '.join(sorted(known))})")
        try:
            interval = float(seconds)
        except ValueError:
            raise ValueError(f"{item!r}: the interval must be a number of seconds") from None
        if interval <= 0:
            raise ValueError(f"{item!r}: the interval must be positive")
        jobs.append(ScheduledJob(name, interval))
    return tuple(jobs)
