"""Every scheduled job runs a task the maintenance registry knows."""

from __future__ import annotations

from pipeline.maintenance.registry import MAINTENANCE_TASKS
from scheduler.jobs import SCHEDULED_JOBS


def test_every_scheduled_job_names_a_registered_task() -> None:
    unknown = [job.name for job in SCHEDULED_JOBS if job.name not in MAINTENANCE_TASKS]
    assert unknown == []
    assert len({job.name for job in SCHEDULED_JOBS}) == len(SCHEDULED_JOBS)
