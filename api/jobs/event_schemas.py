"""Schemas of the job event stream endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class EventsQuerySchema(Schema):
    token = fields.Str(
        # A JWT is base64url and dots; bounded in characters and bytes so the
        # request line stays under the HTTP parser's 8 KiB limit.
        validate=[validate.Length(min=1, max=2048), validate.Regexp(r"^[A-Za-z0-9_.-]+$")],
        metadata={
            "description": "An events token from POST /jobs/{id}/events/token, for clients"
            " that cannot send an Authorization header (EventSource)"
        },
    )
    last_event_id = fields.Int(
        validate=validate.Range(min=0),
        metadata={"description": "Resume after this event id (same as the Last-Event-ID header)"},
    )


class EventsTokenSchema(Schema):
    token = fields.Str(required=True)
    expires_in = fields.Int(required=True, metadata={"description": "Seconds"})
    url = fields.Str(required=True, metadata={"description": "The stream URL with the token"})
