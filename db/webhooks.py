"""Queries on webhook subscriptions, events and deliveries.

An event happens inside the caller's transaction: :func:`emit_event` records
it with one delivery row per subscriber and returns the delivery ids, which
the caller enqueues once the transaction has committed (a message never
names a row that does not exist yet; a message lost on the way is re-sent by
the sweep, :func:`due_deliveries`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from db import files as file_rows
from db import jobs as job_rows
from db.sql import changed_one_row, fetch_page
from t2m import webhook_events as ev
from t2m.ids import new_id
from t2m.job_status import JobStatus

WEBHOOK_COLUMNS = "id, owner_id, url, events, active, job_id, created_at, updated_at"
DELIVERY_COLUMNS = (
    "d.id, d.event_id, e.event, d.webhook_id, d.job_id, d.sequence, d.redelivery_of, d.status,"
    " d.attempts, d.last_status_code, d.last_error, d.last_duration_ms, d.last_attempt_at,"
    " d.next_attempt_at, d.created_at, d.finished_at"
)
_DELIVERY_FROM = "FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id"

# Which event a job.* name needs the job to be in when it is emitted: a stage
# racing a cancel must not announce progress after the cancellation.
_JOB_STATUS_FOR = {
    ev.JOB_STARTED: JobStatus.PROCESSING,
    ev.JOB_PROGRESS: JobStatus.PROCESSING,
    ev.JOB_COMPLETED: JobStatus.COMPLETED,
    ev.JOB_FAILED: JobStatus.FAILED,
    ev.JOB_CANCELLED: JobStatus.CANCELLED,
}


# --- subscriptions -----------------------------------------------------------


async def insert_webhook(
    conn: asyncpg.Connection,
    *,
    owner_id: str,
    url: str,
    events: Sequence[str],
    secret: str,
    active: bool = True,
    job_id: str | None = None,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO webhooks (id, owner_id, url, events, secret, active, job_id)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {WEBHOOK_COLUMNS}",
        new_id("whk"),
        owner_id,
        url,
        list(events),
        secret,
        active,
        job_id,
    )
    assert row is not None
    return row


async def owned_webhook(
    conn: asyncpg.Connection, webhook_id: str, owner_id: str
) -> asyncpg.Record | None:
    """The subscription if it is the owner's (anyone else's id is "not found")."""
    return await conn.fetchrow(
        f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND owner_id = $2",
        webhook_id,
        owner_id,
    )


async def list_webhooks(
    conn: asyncpg.Connection, owner_id: str, *, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    """The owner's standing subscriptions, newest first (a job's one-off
    subscription is reached through the job's generate response)."""
    return await fetch_page(
        conn,
        select=f"SELECT {WEBHOOK_COLUMNS} FROM webhooks",
        count_from="FROM webhooks",
        where="owner_id = $1 AND job_id IS NULL",
        args=(owner_id,),
        order_by="created_at DESC, id DESC",
        limit=limit,
        offset=offset,
    )


async def update_webhook(
    conn: asyncpg.Connection, webhook_id: str, owner_id: str, **fields: Any
) -> asyncpg.Record | None:
    if not fields:
        return await owned_webhook(conn, webhook_id, owner_id)
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(fields, start=3))
    return await conn.fetchrow(
        f"UPDATE webhooks SET {assignments}, updated_at = now()"
        f" WHERE id = $1 AND owner_id = $2 RETURNING {WEBHOOK_COLUMNS}",
        webhook_id,
        owner_id,
        *fields.values(),
    )


async def delete_webhook(conn: asyncpg.Connection, webhook_id: str, owner_id: str) -> bool:
    return await changed_one_row(
        conn, "DELETE FROM webhooks WHERE id = $1 AND owner_id = $2", webhook_id, owner_id
    )


async def job_webhook(conn: asyncpg.Connection, job_id: str) -> asyncpg.Record | None:
    """A job's one-off subscription, with its secret (for the generate response)."""
    return await conn.fetchrow(
        f"SELECT {WEBHOOK_COLUMNS}, secret FROM webhooks WHERE job_id = $1", job_id
    )


# --- events ------------------------------------------------------------------


async def emit_event(
    conn: asyncpg.Connection,
    *,
    owner_id: str,
    event: str,
    data: Mapping[str, Any],
    job_id: str | None = None,
    file_id: str | None = None,
    dedupe_key: str | None = None,
    progress_step: int | None = None,
    webhook_ids: Sequence[str] | None = None,
) -> list[str]:
    """Record an event and a delivery per subscriber; return the delivery ids.

    Must run in the caller's transaction, after the caller's own update of
    the job row: the per-job sequence row stays locked until commit, so the
    events of one job are numbered in the order they become visible, which is
    what lets a delivery hold back until its predecessors are done.

    ``webhook_ids`` sends to those subscriptions only, whatever their event
    filter (the ping).  ``dedupe_key`` makes an event happen at most once;
    ``progress_step`` at most once per step and never backwards.
    """
    assert conn.is_in_transaction(), "emit_event needs the caller's transaction"
    if webhook_ids is None:
        webhook_ids = [
            r["id"]
            for r in await conn.fetch(
                """
                SELECT id FROM webhooks
                WHERE active AND $2 = ANY(events)
                  AND ((job_id IS NULL AND owner_id = $1) OR job_id = $3)
                ORDER BY created_at, id
                """,
                owner_id,
                event,
                job_id,
            )
        ]
    if not webhook_ids:
        return []  # nobody listens: no rows at all
    sequence: int | None = None
    if job_id is not None:
        sequence = await conn.fetchval(
            """
            INSERT INTO webhook_job_streams AS s (job_id, last_sequence, progress_step)
            VALUES ($1, 1, coalesce($2, 0))
            ON CONFLICT (job_id) DO UPDATE
                SET last_sequence = s.last_sequence + 1,
                    progress_step = greatest(s.progress_step, coalesce($2, 0))
                WHERE $2::integer IS NULL OR s.progress_step < $2
            RETURNING last_sequence
            """,
            job_id,
            progress_step,
        )
        if sequence is None:
            return []  # this progress step was announced already
    event_id = new_id("evt")
    body = ev.event_body(event_id=event_id, event=event, data=data, sequence=sequence)
    inserted = await conn.fetchval(
        """
        INSERT INTO webhook_events
            (id, owner_id, event, job_id, file_id, sequence, dedupe_key, body)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (dedupe_key) DO NOTHING RETURNING id
        """,
        event_id,
        owner_id,
        event,
        job_id,
        file_id,
        sequence,
        dedupe_key,
        body,
    )
    if inserted is None:
        return []  # happened before (a redelivered stage, a race)
    delivery_ids = [new_id("dlv") for _ in webhook_ids]
    await conn.execute(
        """
        INSERT INTO webhook_deliveries (id, event_id, webhook_id, job_id, sequence)
        SELECT t.delivery_id, $3, t.webhook_id, $4, $5
        FROM unnest($1::text[], $2::text[]) AS t(delivery_id, webhook_id)
        """,
        delivery_ids,
        list(webhook_ids),
        event_id,
        job_id,
        sequence,
    )
    return delivery_ids


async def emit_job_event(
    conn: asyncpg.Connection, job_id: str, event: str, *, public_base_url: str
) -> list[str]:
    """Emit a job.* event from the job row as the caller's transaction left it.

    Nothing is emitted when the job is not (or no longer) in the state the
    event announces; job.progress goes out at most once per 10 % step.
    """
    job = await job_rows.job_by_id(conn, job_id)
    if job is None or job["status"] != _JOB_STATUS_FOR[event]:
        return []
    step: int | None = None
    dedupe_key: str | None = f"{job_id}:{event}"
    if event == ev.JOB_PROGRESS:
        step = ev.progress_step(job["progress"])
        if step <= 0:
            return []
        dedupe_key = None  # the step counter is the guard
    return await emit_event(
        conn,
        owner_id=job["owner_id"],
        event=event,
        data=ev.job_event_data(job, public_base_url),
        job_id=job_id,
        dedupe_key=dedupe_key,
        progress_step=step,
    )


async def emit_file_event(
    conn: asyncpg.Connection, file_id: str, *, public_base_url: str
) -> list[str]:
    """file.processed or file.failed, once, after an upload's processing finished."""
    row = await file_rows.file_by_id(conn, file_id)
    if row is None or row["processing_status"] not in ("completed", "failed"):
        return []
    event = ev.FILE_PROCESSED if row["processing_status"] == "completed" else ev.FILE_FAILED
    return await emit_event(
        conn,
        owner_id=row["owner_id"],
        event=event,
        data=ev.file_event_data(row, public_base_url),
        file_id=file_id,
        dedupe_key=f"{file_id}:{event}",
    )


# --- deliveries: the API's view ------------------------------------------------


async def list_deliveries(
    conn: asyncpg.Connection,
    webhook_id: str,
    *,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    return await fetch_page(
        conn,
        select=f"SELECT {DELIVERY_COLUMNS} {_DELIVERY_FROM}",
        count_from="FROM webhook_deliveries d",
        where="d.webhook_id = $1 AND ($2::text IS NULL OR d.status = $2)",
        args=(webhook_id, status),
        order_by="d.created_at DESC, d.id DESC",
        limit=limit,
        offset=offset,
    )


async def delivery_of_webhook(
    conn: asyncpg.Connection, delivery_id: str, webhook_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {DELIVERY_COLUMNS} {_DELIVERY_FROM} WHERE d.id = $1 AND d.webhook_id = $2",
        delivery_id,
        webhook_id,
    )


async def redeliver(conn: asyncpg.Connection, delivery_id: str, webhook_id: str) -> str | None:
    """Send a delivery's event again; returns the id of the delivery that will.

    A finished delivery gets a new row (same event id, so receivers dedupe;
    its own attempts and retry window).  A pending one is made due now.
    """
    status = await conn.fetchval(
        "SELECT status FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2 FOR UPDATE",
        delivery_id,
        webhook_id,
    )
    if status is None:
        return None
    if status == "pending":
        await conn.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = $1", delivery_id
        )
        return delivery_id
    new_delivery: str = await conn.fetchval(
        """
        INSERT INTO webhook_deliveries (id, event_id, webhook_id, job_id, sequence, redelivery_of)
        SELECT $2, event_id, webhook_id, job_id, sequence, id
        FROM webhook_deliveries WHERE id = $1
        RETURNING id
        """,
        delivery_id,
        new_id("dlv"),
    )
    return new_delivery


# --- deliveries: the worker's side ---------------------------------------------


@dataclass(frozen=True)
class Claim:
    """What a delivery message may do now.

    ``verdict`` is one of: ``claimed`` (attempt it: ``row`` has the target,
    secret and body), ``finished`` / ``gone`` (nothing to do), ``busy``
    (another attempt is in flight), ``held`` (an earlier event of the same
    job for the same subscription is still pending; its end releases this
    one), ``not_due`` (``wait_s`` to go), ``throttled`` (the subscription
    has its quota of attempts in flight; ``throttled`` times in a row),
    ``disabled`` (the subscription was switched off).
    """

    verdict: str
    row: asyncpg.Record | None = None
    wait_s: float = 0.0
    throttled: int = 0


async def claim_delivery(
    conn: asyncpg.Connection, delivery_id: str, *, lease_s: float, max_in_flight: int
) -> Claim:
    async with conn.transaction():
        row = await conn.fetchrow(
            """
            SELECT d.id, d.webhook_id, d.job_id, d.sequence, d.status, d.attempts, d.created_at,
                   coalesce(d.locked_until > now(), false) AS locked,
                   extract(epoch FROM d.next_attempt_at - now())::float8 AS wait_s,
                   w.url, w.secret, w.active, e.id AS event_id, e.event, e.body
            FROM webhook_deliveries d
            JOIN webhooks w ON w.id = d.webhook_id
            JOIN webhook_events e ON e.id = d.event_id
            WHERE d.id = $1
            FOR UPDATE OF d
            """,
            delivery_id,
        )
        if row is None:
            return Claim("gone")
        if row["status"] != "pending":
            return Claim("finished", row)
        if row["locked"]:
            return Claim("busy", row)
        if not row["active"] and row["event"] != ev.PING:
            return Claim("disabled", row)
        if row["wait_s"] > 0:
            return Claim("not_due", row, wait_s=row["wait_s"])
        if row["job_id"] is not None and await conn.fetchval(
            """
            SELECT EXISTS (SELECT 1 FROM webhook_deliveries
                           WHERE webhook_id = $1 AND job_id = $2 AND status = 'pending'
                             AND sequence < $3)
            """,
            row["webhook_id"],
            row["job_id"],
            row["sequence"],
        ):
            return Claim("held", row)
        if max_in_flight > 0:
            # Serialise the count per subscription so two workers cannot both
            # take the last slot.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", row["webhook_id"]
            )
            in_flight = await conn.fetchval(
                "SELECT count(*) FROM webhook_deliveries"
                " WHERE webhook_id = $1 AND locked_until > now()",
                row["webhook_id"],
            )
            if in_flight >= max_in_flight:
                times = await conn.fetchval(
                    "UPDATE webhook_deliveries SET throttled = throttled + 1"
                    " WHERE id = $1 RETURNING throttled",
                    delivery_id,
                )
                return Claim("throttled", row, throttled=times)
        await conn.execute(
            "UPDATE webhook_deliveries SET locked_until = now() + make_interval(secs => $2),"
            " throttled = 0 WHERE id = $1",
            delivery_id,
            lease_s,
        )
        return Claim("claimed", row)


async def record_attempt(
    conn: asyncpg.Connection,
    delivery_id: str,
    *,
    status: str,
    status_code: int | None,
    error: str | None,
    duration_ms: float | None,
    retry_in_s: float | None = None,
    attempted: bool = True,
) -> None:
    """Store an attempt's outcome: ``delivered``, ``failed`` or ``pending``
    (to be retried in ``retry_in_s``); the lease is released either way."""
    await conn.execute(
        """
        UPDATE webhook_deliveries SET
            status = $2,
            attempts = attempts + $7::integer,
            last_status_code = CASE WHEN $7::integer = 1 THEN $3 ELSE last_status_code END,
            last_error = $4,
            last_duration_ms = CASE WHEN $7::integer = 1 THEN $5 ELSE last_duration_ms END,
            last_attempt_at = CASE WHEN $7::integer = 1 THEN now() ELSE last_attempt_at END,
            next_attempt_at = CASE WHEN $2 = 'pending'
                                   THEN now() + make_interval(secs => $6) ELSE next_attempt_at END,
            locked_until = NULL,
            finished_at = CASE WHEN $2 = 'pending' THEN NULL ELSE now() END
        WHERE id = $1 AND status = 'pending'
        """,
        delivery_id,
        status,
        status_code,
        error,
        duration_ms,
        retry_in_s or 0.0,
        1 if attempted else 0,
    )


async def next_in_stream(
    conn: asyncpg.Connection, webhook_id: str, job_id: str | None, sequence: int | None
) -> str | None:
    """The pending delivery a finished one was holding back, if any."""
    if job_id is None or sequence is None:
        return None
    found: str | None = await conn.fetchval(
        """
        SELECT id FROM webhook_deliveries
        WHERE webhook_id = $1 AND job_id = $2 AND status = 'pending' AND sequence > $3
        ORDER BY sequence, created_at LIMIT 1
        """,
        webhook_id,
        job_id,
        sequence,
    )
    return found


async def due_deliveries(conn: asyncpg.Connection, *, grace_s: float, limit: int) -> list[str]:
    """Pending deliveries overdue by ``grace_s`` with no attempt in flight and
    nothing ahead of them in their stream: their message was lost (a crashed
    worker, a Redis outage at enqueue time)."""
    rows = await conn.fetch(
        """
        SELECT d.id FROM webhook_deliveries d
        WHERE d.status = 'pending'
          AND d.next_attempt_at <= now() - make_interval(secs => $1)
          AND (d.locked_until IS NULL OR d.locked_until < now())
          AND NOT EXISTS (
              SELECT 1 FROM webhook_deliveries p
              WHERE p.webhook_id = d.webhook_id AND p.job_id = d.job_id
                AND p.status = 'pending' AND p.sequence < d.sequence)
        ORDER BY d.next_attempt_at
        LIMIT $2
        """,
        grace_s,
        limit,
    )
    return [r["id"] for r in rows]
