"""/api/v1/webhooks/*: subscribe to job and file events, inspect and replay deliveries."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, request_schema

from api.auth.authn import require_user
from api.common_schemas import BEARER, INVALID, NOT_FOUND, UNAUTHORIZED, envelope
from api.common_schemas import PageQuerySchema as WebhookListQuerySchema
from api.keys import DB_POOL
from api.responses import ok
from api.webhooks import service
from api.webhooks.schemas import (
    DeliveryListQuerySchema,
    DeliveryListSchema,
    DeliverySchema,
    WebhookCreateSchema,
    WebhookListSchema,
    WebhookSchema,
    WebhookUpdateSchema,
)
from api.webhooks.service import WEBHOOK_SERVICE, WebhookService
from db import webhooks as webhook_rows
from t2m.errors import NotFound
from t2m.ids import is_id
from t2m.pagination import page_of, page_window
from t2m.webhook_events import PING

routes = web.RouteTableDef()


def _webhooks(request: web.Request) -> WebhookService:
    return request.config_dict[WEBHOOK_SERVICE]


@routes.post("/webhooks")
@docs(
    tags=["webhooks"],
    summary="Subscribe a URL to events (the secret is returned only here)",
    security=BEARER,
    responses={
        201: {"schema": envelope(WebhookSchema, "CreatedWebhook"), "description": "Subscribed"},
        400: INVALID,
        401: UNAUTHORIZED,
    },
)
@request_schema(WebhookCreateSchema)
async def create_webhook(request: web.Request) -> web.Response:
    principal = await require_user(request)
    data = request["data"]
    await _webhooks(request).check_target_url(data["url"])
    secret = data.get("secret") or service.new_secret()
    async with request.config_dict[DB_POOL].acquire() as conn:
        row = await webhook_rows.insert_webhook(
            conn,
            owner_id=principal.user_id,
            url=data["url"],
            events=list(dict.fromkeys(data["events"])),
            secret=secret,
            active=data["active"],
        )
    return ok(
        service.webhook_view(row, secret=secret),
        "Webhook created; keep the secret, it is not shown again",
        status=201,
    )


@routes.get("/webhooks")
@docs(
    tags=["webhooks"],
    summary="Your subscriptions, newest first",
    security=BEARER,
    responses={
        200: {"schema": envelope(WebhookListSchema, "WebhookList"), "description": "A page"},
        400: INVALID,
        401: UNAUTHORIZED,
    },
)
@request_schema(WebhookListQuerySchema, location="querystring")
async def list_webhooks(request: web.Request) -> web.Response:
    principal = await require_user(request)
    query = request["data"]
    async with request.config_dict[DB_POOL].acquire() as conn:
        rows, total = await webhook_rows.list_webhooks(
            conn,
            principal.user_id,
            **page_window(query),
        )
    return ok(page_of([service.webhook_view(r) for r in rows], query, total))


@routes.get("/webhooks/{webhook_id}")
@docs(
    tags=["webhooks"],
    summary="One subscription (without its secret)",
    security=BEARER,
    responses={
        200: {"schema": envelope(WebhookSchema, "Webhook"), "description": "The subscription"},
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
async def get_webhook(request: web.Request) -> web.Response:
    principal = await require_user(request)
    row = await _webhooks(request).owned_webhook(principal, request.match_info["webhook_id"])
    return ok(service.webhook_view(row))


@routes.patch("/webhooks/{webhook_id}")
@docs(
    tags=["webhooks"],
    summary="Change the URL, the events or switch a subscription off and on",
    security=BEARER,
    responses={
        200: {"schema": envelope(WebhookSchema, "UpdatedWebhook"), "description": "Updated"},
        400: INVALID,
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
@request_schema(WebhookUpdateSchema)
async def update_webhook(request: web.Request) -> web.Response:
    principal = await require_user(request)
    row = await _webhooks(request).owned_webhook(principal, request.match_info["webhook_id"])
    changes = dict(request["data"])
    if "url" in changes:
        await _webhooks(request).check_target_url(changes["url"])
    if "events" in changes:
        changes["events"] = list(dict.fromkeys(changes["events"]))
    async with request.config_dict[DB_POOL].acquire() as conn:
        updated = await webhook_rows.update_webhook(conn, row["id"], principal.user_id, **changes)
    if updated is None:  # deleted meanwhile
        raise NotFound("Webhook not found")
    return ok(service.webhook_view(updated), "Webhook updated")


@routes.delete("/webhooks/{webhook_id}")
@docs(
    tags=["webhooks"],
    summary="Unsubscribe (pending deliveries are dropped with it)",
    security=BEARER,
    responses={200: {"description": "Deleted"}, 401: UNAUTHORIZED, 404: NOT_FOUND},
)
async def delete_webhook(request: web.Request) -> web.Response:
    principal = await require_user(request)
    row = await _webhooks(request).owned_webhook(principal, request.match_info["webhook_id"])
    async with request.config_dict[DB_POOL].acquire() as conn:
        await webhook_rows.delete_webhook(conn, row["id"], principal.user_id)
    return ok({"id": row["id"], "deleted": True}, "Webhook deleted")


@routes.post("/webhooks/{webhook_id}/test")
@docs(
    tags=["webhooks"],
    summary="Send a ping event to the subscription now (even if switched off)",
    security=BEARER,
    responses={
        202: {"schema": envelope(DeliverySchema, "PingDelivery"), "description": "Queued"},
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
async def test_webhook(request: web.Request) -> web.Response:
    principal = await require_user(request)
    row = await _webhooks(request).owned_webhook(principal, request.match_info["webhook_id"])
    async with request.config_dict[DB_POOL].acquire() as conn:
        async with conn.transaction():
            (delivery_id,) = await webhook_rows.emit_event(
                conn,
                owner_id=principal.user_id,
                event=PING,
                data={
                    "webhook_id": row["id"],
                    "events": list(row["events"]),
                    "message": "Ping from T2M: this endpoint receives your events",
                },
                webhook_ids=[row["id"]],
            )
        delivery = await webhook_rows.delivery_of_webhook(conn, delivery_id, row["id"])
    await _webhooks(request).send_deliveries([delivery_id])
    assert delivery is not None
    return ok(service.delivery_view(delivery), "Ping queued", status=202)


@routes.get("/webhooks/{webhook_id}/deliveries")
@docs(
    tags=["webhooks"],
    summary="Deliveries of a subscription, newest first, with their attempts",
    security=BEARER,
    responses={
        200: {"schema": envelope(DeliveryListSchema, "DeliveryList"), "description": "A page"},
        400: INVALID,
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
@request_schema(DeliveryListQuerySchema, location="querystring")
async def list_deliveries(request: web.Request) -> web.Response:
    principal = await require_user(request)
    row = await _webhooks(request).owned_webhook(principal, request.match_info["webhook_id"])
    query = request["data"]
    async with request.config_dict[DB_POOL].acquire() as conn:
        rows, total = await webhook_rows.list_deliveries(
            conn,
            row["id"],
            status=query.get("status"),
            **page_window(query),
        )
    return ok(page_of([service.delivery_view(r) for r in rows], query, total))


@routes.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
@docs(
    tags=["webhooks"],
    summary="Send a delivery's event again (same event id; a pending one is sent now)",
    security=BEARER,
    responses={
        202: {"schema": envelope(DeliverySchema, "Redelivery"), "description": "Queued"},
        401: UNAUTHORIZED,
        404: NOT_FOUND,
    },
)
async def redeliver(request: web.Request) -> web.Response:
    principal = await require_user(request)
    row = await _webhooks(request).owned_webhook(principal, request.match_info["webhook_id"])
    delivery_id = request.match_info["delivery_id"]
    if not is_id(delivery_id, "dlv"):
        raise service.delivery_not_found(delivery_id)
    async with request.config_dict[DB_POOL].acquire() as conn:
        async with conn.transaction():
            sending = await webhook_rows.redeliver(conn, delivery_id, row["id"])
        if sending is None:
            raise service.delivery_not_found(delivery_id)
        delivery = await webhook_rows.delivery_of_webhook(conn, sending, row["id"])
    await _webhooks(request).send_deliveries([sending])
    assert delivery is not None
    return ok(service.delivery_view(delivery), "Redelivery queued", status=202)
