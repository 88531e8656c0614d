"""Schemas of the /api/v1/admin/users endpoints (accounts, approval, quotas)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.auth.schemas import QuotaSchema, RegisteredUserSchema
from api.common_schemas import PageQuerySchema, PaginationSchema

# The columns' ranges (bigint bytes, integer others).
_BIGINT = validate.Range(min=0, max=2**63 - 1)
_INT = validate.Range(min=0, max=2**31 - 1)
_NULL_IS_DEFAULT = "null: back to the server default"


class UserListQuerySchema(PageQuerySchema):
    pending = fields.Bool(
        metadata={"description": "true: only accounts waiting for approval; false: the others"}
    )


class AdminUserSchema(RegisteredUserSchema):
    is_active = fields.Bool(required=True)


class AdminUserListSchema(Schema):
    items = fields.List(fields.Nested(AdminUserSchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)


class QuotaLimitsSchema(Schema):
    """One value per quota; in ``overrides`` null means the server default applies."""

    stored_bytes = fields.Int(allow_none=True, required=True)
    files = fields.Int(allow_none=True, required=True)
    render_seconds_per_day = fields.Int(allow_none=True, required=True)
    concurrent_jobs = fields.Int(allow_none=True, required=True)


class QuotaUpdateSchema(Schema):
    """Only the fields sent change."""

    stored_bytes = fields.Int(
        allow_none=True, validate=_BIGINT, metadata={"description": f"Bytes; {_NULL_IS_DEFAULT}"}
    )
    files = fields.Int(allow_none=True, validate=_INT, metadata={"description": _NULL_IS_DEFAULT})
    render_seconds_per_day = fields.Int(
        allow_none=True,
        validate=_INT,
        metadata={"description": f"Seconds of output video per UTC day; {_NULL_IS_DEFAULT}"},
    )
    concurrent_jobs = fields.Int(
        allow_none=True,
        validate=_INT,
        metadata={"description": f"Queued + processing jobs; {_NULL_IS_DEFAULT}"},
    )


class UserQuotaSchema(Schema):
    user_id = fields.Str(required=True)
    quota = fields.Nested(QuotaSchema, required=True, metadata={"description": "Use and limits"})
    overrides = fields.Nested(QuotaLimitsSchema, required=True)
    defaults = fields.Nested(QuotaLimitsSchema, required=True)
