"""Schemas shared by every resource: envelopes, errors, pagination."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class ErrorBodySchema(Schema):
    code = fields.Str(required=True, metadata={"example": "VALIDATION_ERROR"})
    message = fields.Str(required=True)
    details = fields.Raw(allow_none=True)
    request_id = fields.Str()


class ErrorEnvelopeSchema(Schema):
    success = fields.Bool(required=True, metadata={"example": False})
    error = fields.Nested(ErrorBodySchema, required=True)


class PaginationSchema(Schema):
    page = fields.Int(required=True)
    items_per_page = fields.Int(required=True)
    total_items = fields.Int(required=True)
    total_pages = fields.Int(required=True)
    has_next = fields.Bool(required=True)
    has_previous = fields.Bool(required=True)
    next_page = fields.Int(allow_none=True)
    previous_page = fields.Int(allow_none=True)


MAX_PAGE = 1_000_000


class PageQuerySchema(Schema):
    page = fields.Int(
        load_default=1,
        validate=[
            validate.Range(min=1, error="Page must be greater than 0"),
            # The row offset must fit PostgreSQL's bigint.
            validate.Range(max=MAX_PAGE, error=f"Page must be at most {MAX_PAGE}"),
        ],
    )
    items_per_page = fields.Int(
        load_default=20,
        validate=validate.Range(min=1, max=100, error="Items per page must be between 1 and 100"),
    )


def envelope(data_schema: type[Schema] | Schema, name: str) -> type[Schema]:
    """A ``{"success", "data", "message"}`` schema around ``data_schema``."""
    return Schema.from_dict(
        {
            "success": fields.Bool(required=True, metadata={"example": True}),
            "data": fields.Nested(data_schema, required=True),
            "message": fields.Str(),
        },
        name=f"{name}Envelope",
    )


def error_doc(description: str) -> dict[str, object]:
    """An OpenAPI response entry for an error envelope."""
    return {"schema": ErrorEnvelopeSchema, "description": description}


# The security requirement of every operation that takes a bearer token.
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]

INVALID = error_doc("Validation failed (VALIDATION_ERROR with per-field details)")
UNAUTHORIZED = error_doc("Missing, invalid, expired or revoked token")
FORBIDDEN = error_doc("Not allowed for this user (PERMISSION_DENIED)")
NOT_FOUND = error_doc("No such resource, or not yours (RESOURCE_NOT_FOUND)")
RATE_LIMITED = error_doc("Too many requests (RATE_LIMIT_EXCEEDED, see Retry-After)")
STORAGE_QUOTA = error_doc(
    "Over your stored-bytes or files quota (QUOTA_EXCEEDED; details name the quota,"
    " its use and limit; nothing is kept)"
)
JOB_QUOTA = error_doc(
    "Over your concurrent-jobs or daily render-seconds quota (QUOTA_EXCEEDED, see Retry-After)"
)
ACCOUNT_PENDING = error_doc("The account waits for an administrator's approval (ACCOUNT_PENDING)")
