"""Every maintenance task by name, and :func:`run_task`, which runs and records one.

Nothing in this package imports the registry back: tasks are plain functions
of a :class:`MaintenanceContext`; callers look them up here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from db import operations as op_rows
from pipeline.maintenance import tasks
from pipeline.maintenance.context import MaintenanceContext
from pipeline.maintenance.guests import reap_guests_task
from pipeline.maintenance.reaper import reap_stuck_jobs

Task = Callable[..., Awaitable[dict[str, Any]]]

# Every task by name; each takes a MaintenanceContext and keyword parameters.
MAINTENANCE_TASKS: dict[str, Task] = {
    "expire_revoked_tokens": tasks.expire_revoked_tokens_task,
    "requeue_webhook_deliveries": tasks.requeue_webhook_deliveries_task,
    "clean_tmp": tasks.clean_tmp,
    "clean_segments": tasks.clean_segments,
    "rotate_logs": tasks.rotate_logs,
    "reap_stuck_jobs": reap_stuck_jobs,
    "purge_deleted": tasks.purge_deleted,
    "warm_cache": tasks.warm_cache,
    "optimize": tasks.optimize,
    "reap_guests": reap_guests_task,
}


async def run_task(
    ctx: MaintenanceContext, name: str, *, slot: int | None = None, **params: Any
) -> dict[str, Any]:
    """Run a maintenance task by name and record the run (also when it fails);
    ``slot`` is the schedule slot of a scheduled run."""
    task = MAINTENANCE_TASKS[name]
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    outcome, error, result = "ok", None, {}
    try:
        result = await task(ctx, **params)
        return result
    except Exception as exc:
        outcome, error = "error", f"{type(exc).__name__}: {exc}"[:1000]
        raise
    finally:
        counts = {
            k: (len(v) if isinstance(v, list) else v)
            for k, v in result.items()
            if isinstance(v, int | float | str | list)
        }
        async with ctx.pool.acquire() as conn:
            await op_rows.insert_maintenance_run(
                conn,
                job=name,
                started_at=started_at,
                duration_s=time.perf_counter() - started,
                outcome=outcome,
                counts=counts,
                error=error,
                slot=slot,
            )
