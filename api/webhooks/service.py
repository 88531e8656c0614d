"""Webhook subscriptions on the API side: target checks, secrets, views, sending.

The API never calls a receiver itself: it records rows and enqueues
delivery ids for the ``webhooks`` workers.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
from aiohttp import web

from api.auth.authn import Principal
from api.keys import DB_POOL, ENQUEUER, SETTINGS
from db import webhooks as webhook_rows
from pipeline.stages.webhooks import TargetRefused, allowed_networks, check_target
from t2m.enqueue import Enqueuer
from t2m.errors import NotFound, ServiceUnavailable, ValidationFailed
from t2m.ids import is_id
from t2m.queues import DELIVER_WEBHOOK
from t2m.settings import Settings

log = logging.getLogger(__name__)


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def delivery_not_found(delivery_id: str) -> NotFound:
    return NotFound(
        "Delivery not found",
        f"Delivery with ID '{delivery_id}' does not exist for this webhook",
    )


class WebhookService:
    """Subscriptions as the API handles them: checks its targets, finds the
    caller's webhooks, and hands committed deliveries to the workers."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, enqueuer: Enqueuer) -> None:
        self._settings = settings
        self._pool = pool
        self._enqueuer = enqueuer

    async def check_target_url(self, url: str, *, field: str = "url") -> None:
        """Refuse a target the workers would refuse (checked again at every attempt)."""
        try:
            await check_target(url, allowed=allowed_networks(self._settings.webhook_allowed_cidrs))
        except TargetRefused as exc:
            raise ValidationFailed(
                "Request validation failed", {field: [f"Webhook target refused: {exc}"]}
            ) from exc

    async def owned_webhook(self, principal: Principal, webhook_id: str) -> asyncpg.Record:
        row = None
        if is_id(webhook_id, "whk"):
            async with self._pool.acquire() as conn:
                row = await webhook_rows.owned_webhook(conn, webhook_id, principal.user_id)
        if row is None:
            raise NotFound(
                "Webhook not found",
                f"Webhook with ID '{webhook_id}' does not exist or you don't have access",
            )
        return row

    async def send_deliveries(self, delivery_ids: Sequence[str]) -> None:
        """Enqueue committed deliveries; when the queue is down the sweep sends them."""
        for delivery_id in delivery_ids:
            try:
                await self._enqueuer.send(DELIVER_WEBHOOK, delivery_id)
            except ServiceUnavailable:
                log.warning("could not enqueue webhook delivery %s; left to the sweep", delivery_id)


WEBHOOK_SERVICE = web.AppKey("webhook_service", WebhookService)


async def webhook_service_ctx(app: web.Application) -> AsyncIterator[None]:
    app[WEBHOOK_SERVICE] = WebhookService(app[SETTINGS], app[DB_POOL], app[ENQUEUER])
    yield


def webhook_view(row: asyncpg.Record, *, secret: str | None = None) -> dict[str, Any]:
    view = {
        "id": row["id"],
        "url": row["url"],
        "events": list(row["events"]),
        "active": row["active"],
        "job_id": row["job_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
    if secret is not None:
        view["secret"] = secret
    return view


def delivery_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "event_id": row["event_id"],
        "event": row["event"],
        "webhook_id": row["webhook_id"],
        "job_id": row["job_id"],
        "sequence": row["sequence"],
        "redelivery_of": row["redelivery_of"],
        "status": row["status"],
        "attempts": row["attempts"],
        "last_status_code": row["last_status_code"],
        "last_error": row["last_error"],
        "duration_ms": row["last_duration_ms"],
        "last_attempt_at": row["last_attempt_at"],
        "next_attempt_at": row["next_attempt_at"] if row["status"] == "pending" else None,
        "created_at": row["created_at"],
        "finished_at": row["finished_at"],
    }
