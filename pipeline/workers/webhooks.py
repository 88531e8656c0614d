"""The ``webhooks`` queue: one message per delivery attempt.

The delivery row is the truth, the message only a nudge: a message that finds
its delivery finished, in flight, not yet due or held behind an earlier event
of the same job does nothing, so duplicates (the sweep, a redelivered
message) are harmless.  Each attempt is bounded by the connect/total
timeouts, and a subscription has at most ``WEBHOOK_MAX_IN_FLIGHT`` attempts
running, so a dead receiver holds a few worker threads for seconds, never
the queue.  Run this queue with several threads (``--threads``): attempts
wait on the network, not the CPU.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg

from db import webhooks as webhook_rows
from pipeline.stages import webhooks as delivery
from pipeline.workers import runtime
from pipeline.workers.notify import send_deliveries
from pipeline.workers.resources import db_pool
from t2m.queues import DELIVER_WEBHOOK

log = logging.getLogger(__name__)

# A message that arrives this much early at most (clock skew between hosts)
# is put back for the remaining time; one earlier than that is a stale
# duplicate, and the delivery's own retry message is still on its way.
EARLY_LIMIT_S = 30.0
# A throttled message comes back after 1-2x this, doubling each time in a
# row (up to the request timeout): quickly when the quota frees at once (a
# fast receiver), rarely when it does not (a hung one with a backlog).
THROTTLE_BASE_S = 0.1
# Beyond the request timeout, how long an attempt may hold its lease before
# the sweep assumes its worker died.
LEASE_MARGIN_S = 30.0

_session: aiohttp.ClientSession | None = None


def _client() -> aiohttp.ClientSession:
    """One session per worker process, made on the actor loop at first use."""
    global _session
    if _session is None or _session.closed:
        _session = delivery.build_session(_allowed())
    return _session


def _allowed() -> tuple[delivery.IPNetwork, ...]:
    return delivery.allowed_networks(runtime.settings.webhook_allowed_cidrs)


@runtime.actor(
    DELIVER_WEBHOOK,
    # Only for infrastructure errors (database down); the receiver's failures
    # are retried through the row, with the webhook backoff.
    max_retries=3,
    min_backoff=1000,
)
async def deliver_webhook(delivery_id: str) -> None:
    settings = runtime.settings
    pool = await db_pool()
    async with pool.acquire() as conn:
        claim = await webhook_rows.claim_delivery(
            conn,
            delivery_id,
            lease_s=settings.webhook_timeout_s + LEASE_MARGIN_S,
            max_in_flight=settings.webhook_max_in_flight,
        )
    if claim.verdict == "not_due":
        if claim.wait_s <= EARLY_LIMIT_S:
            await send_deliveries([delivery_id], delay_ms=int(claim.wait_s * 1000) + 50)
        return
    if claim.verdict == "throttled":
        step = min(settings.webhook_timeout_s, THROTTLE_BASE_S * 2 ** (claim.throttled - 1))
        delay_s = step * (1 + random.random())
        await send_deliveries([delivery_id], delay_ms=int(delay_s * 1000))
        return
    if claim.verdict == "disabled":
        assert claim.row is not None
        await _finish(pool, claim.row, "failed", error="the webhook is disabled", attempted=False)
        return
    if claim.verdict != "claimed":
        log.debug("delivery %s: %s; message dropped", delivery_id, claim.verdict)
        return
    row = claim.row
    assert row is not None
    outcome = await delivery.attempt_delivery(
        _client(),
        url=row["url"],
        secret=row["secret"],
        body=row["body"],
        event=row["event"],
        delivery_id=row["id"],
        timeouts=aiohttp.ClientTimeout(
            total=settings.webhook_timeout_s, connect=settings.webhook_connect_timeout_s
        ),
        allowed=_allowed(),
    )
    attempt = row["attempts"] + 1
    if outcome.ok:
        log.info("delivery %s (%s) delivered, attempt %d", row["id"], row["event"], attempt)
        await _finish(pool, row, "delivered", outcome=outcome)
        return
    if outcome.permanent:
        log.warning("delivery %s failed for good: %s", row["id"], outcome.error)
        await _finish(pool, row, "failed", outcome=outcome)
        return
    delay_s = delivery.retry_delay(attempt, settings.webhook_retry_base_s)
    give_up_at = row["created_at"] + timedelta(hours=settings.webhook_max_retry_hours)
    if datetime.now(UTC) + timedelta(seconds=delay_s) > give_up_at:
        log.warning("delivery %s gave up after %d attempts: %s", row["id"], attempt, outcome.error)
        await _finish(pool, row, "failed", outcome=outcome)
        return
    log.info(
        "delivery %s attempt %d failed (%s); retry in %.1f s",
        row["id"],
        attempt,
        outcome.error,
        delay_s,
    )
    async with pool.acquire() as conn:
        await webhook_rows.record_attempt(
            conn,
            row["id"],
            status="pending",
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
            retry_in_s=delay_s,
        )
    await send_deliveries([row["id"]], delay_ms=int(delay_s * 1000))


async def _finish(
    pool: asyncpg.Pool,
    row: asyncpg.Record,
    status: str,
    *,
    outcome: delivery.AttemptOutcome | None = None,
    error: str | None = None,
    attempted: bool = True,
) -> None:
    """Settle a delivery and release the next event of its job it was holding back."""
    async with pool.acquire() as conn, conn.transaction():
        await webhook_rows.record_attempt(
            conn,
            row["id"],
            status=status,
            status_code=outcome.status_code if outcome else None,
            error=outcome.error if outcome else error,
            duration_ms=outcome.duration_ms if outcome else None,
            attempted=attempted,
        )
        following = await webhook_rows.next_in_stream(
            conn, row["webhook_id"], row["job_id"], row["sequence"]
        )
    if following is not None:
        await send_deliveries([following])
