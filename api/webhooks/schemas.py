"""Schemas of the webhook endpoints."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.common_schemas import PageQuerySchema, PaginationSchema
from t2m.settings import MIN_SECRET_BYTES
from t2m.webhook_events import SUBSCRIBABLE_EVENTS

DELIVERY_STATUSES = ("pending", "delivered", "failed")
EVENT_NAME = validate.OneOf(
    SUBSCRIBABLE_EVENTS, error="Unknown event. Must be one of: " + ", ".join(SUBSCRIBABLE_EVENTS)
)


def _url_field(**kwargs: Any) -> fields.Url:
    # Shape only; the target itself (what it resolves to) is checked by the service.
    return fields.Url(
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=2000),
        error_messages={"invalid": "Not a valid http(s) URL."},
        **kwargs,
    )


# Room for repeats (they are merged), none for an empty list.
MAX_EVENTS = 2 * len(SUBSCRIBABLE_EVENTS)


def _events_field(**kwargs: Any) -> fields.List:
    return fields.List(
        fields.Str(validate=EVENT_NAME),
        validate=validate.Length(
            min=1, max=MAX_EVENTS, error=f"Give at least one event (at most {MAX_EVENTS})"
        ),
        **kwargs,
    )


MAX_SECRET_BYTES = 256


def _secret_length(value: str) -> None:
    # Counted in bytes, as the HMAC sees the key: 32 letters of "é" are 64 bytes.
    size = len(value.encode("utf-8"))
    if not MIN_SECRET_BYTES <= size <= MAX_SECRET_BYTES:
        raise ValidationError(
            f"The secret must be {MIN_SECRET_BYTES}–{MAX_SECRET_BYTES} bytes (UTF-8), got {size}"
        )


class WebhookCreateSchema(Schema):
    url = _url_field(required=True, metadata={"example": "https://your-app.com/webhooks/t2m"})
    events = _events_field(required=True, metadata={"example": ["job.completed", "job.failed"]})
    secret = fields.Str(
        validate=_secret_length,
        metadata={
            "description": (
                f"Signing key, {MIN_SECRET_BYTES}–{MAX_SECRET_BYTES} bytes (UTF-8): a shorter"
                " HMAC key can be brute-forced from one signed delivery; generated (and"
                " shown once) when absent"
            )
        },
    )
    active = fields.Bool(load_default=True)


class WebhookUpdateSchema(Schema):
    url = _url_field()
    events = _events_field()
    active = fields.Bool()

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give at least one of url, events, active", "_schema")


class WebhookSchema(Schema):
    id = fields.Str(required=True)
    url = fields.Str(required=True)
    events = fields.List(fields.Str(), required=True)
    active = fields.Bool(required=True)
    job_id = fields.Str(
        allow_none=True,
        metadata={"description": "Set for the one-off subscription of a job's webhook_url"},
    )
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    secret = fields.Str(metadata={"description": "Only in the response that created it"})


class WebhookListSchema(Schema):
    items = fields.List(fields.Nested(WebhookSchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)


class DeliveryListQuerySchema(PageQuerySchema):
    status = fields.Str(validate=validate.OneOf(DELIVERY_STATUSES))


class DeliverySchema(Schema):
    id = fields.Str(required=True)
    event_id = fields.Str(required=True, metadata={"description": "The body's id; dedupe on it"})
    event = fields.Str(required=True)
    webhook_id = fields.Str(required=True)
    job_id = fields.Str(allow_none=True)
    sequence = fields.Int(allow_none=True)
    redelivery_of = fields.Str(allow_none=True)
    status = fields.Str(required=True, metadata={"enum": list(DELIVERY_STATUSES)})
    attempts = fields.Int(required=True)
    last_status_code = fields.Int(allow_none=True)
    last_error = fields.Str(allow_none=True)
    duration_ms = fields.Float(allow_none=True, metadata={"description": "Of the last attempt"})
    last_attempt_at = fields.DateTime(allow_none=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime(required=True)
    finished_at = fields.DateTime(allow_none=True)


class DeliveryListSchema(Schema):
    items = fields.List(fields.Nested(DeliverySchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)
