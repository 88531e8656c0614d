"""Webhook events from the pipeline: record them in the stage's transaction,
enqueue their deliveries after it commits.

Only rows are written and ids enqueued here; the HTTP requests happen on the
``webhooks`` queue, so a slow or dead receiver never holds up a stage.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pipeline.workers import runtime
from t2m.errors import ServiceUnavailable
from t2m.queues import DELIVER_WEBHOOK

log = logging.getLogger(__name__)


def public_base_url() -> str:
    return runtime.settings.public_base_url


async def send_deliveries(delivery_ids: Sequence[str], *, delay_ms: int | None = None) -> None:
    """Enqueue deliveries whose rows are committed.  A failed enqueue only
    delays them: the maintenance sweep re-sends overdue pending deliveries."""
    for delivery_id in delivery_ids:
        try:
            await runtime.enqueuer().send(DELIVER_WEBHOOK, delivery_id, delay_ms=delay_ms)
        except ServiceUnavailable:
            log.warning("could not enqueue webhook delivery %s; the sweep will", delivery_id)
