"""Schemas of the maintenance and operations endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.common_schemas import PageQuerySchema, PaginationSchema


class CleanupQuerySchema(Schema):
    max_age_hours = fields.Float(
        validate=validate.Range(min=0, max=24 * 3650), metadata={"example": 24}
    )


class RotateLogsQuerySchema(Schema):
    max_age_days = fields.Float(validate=validate.Range(min=0, max=3650), metadata={"example": 30})


class FailedOperationsQuerySchema(PageQuerySchema):
    stage = fields.Str(metadata={"example": "render"})


class MaintenanceRunsQuerySchema(PageQuerySchema):
    job = fields.Str(metadata={"example": "clean_tmp"})


class CleanupResultSchema(Schema):
    max_age_hours = fields.Float(required=True)
    deleted = fields.Int(required=True)
    objects = fields.List(fields.Str(), required=True)
    local_dirs = fields.List(fields.Str(), required=True)


class RotateResultSchema(Schema):
    max_age_days = fields.Float(required=True)
    job_log_rows = fields.Int(required=True)
    archives = fields.List(fields.Str(), required=True)
    log_objects = fields.List(fields.Str(), required=True)


class FailedOperationSchema(Schema):
    id = fields.Int(required=True)
    stage = fields.Str(required=True)
    job_id = fields.Str(allow_none=True)
    file_id = fields.Str(allow_none=True)
    error = fields.Str(required=True)
    attempts = fields.Int(required=True)
    permanent = fields.Bool(required=True)
    failed_at = fields.DateTime(required=True)
    retried_at = fields.DateTime(allow_none=True)


class FailedOperationListSchema(Schema):
    items = fields.List(fields.Nested(FailedOperationSchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)


class RetryResultSchema(Schema):
    id = fields.Int(required=True)
    job_id = fields.Str(required=True)
    stage = fields.Str(required=True)
    message_id = fields.Str(required=True)


class MaintenanceRunSchema(Schema):
    id = fields.Int(required=True)
    job = fields.Str(required=True)
    started_at = fields.DateTime(required=True)
    duration_s = fields.Float(required=True)
    outcome = fields.Str(required=True, metadata={"enum": ["ok", "error"]})
    counts = fields.Dict(required=True)
    error = fields.Str(allow_none=True)


class MaintenanceRunListSchema(Schema):
    items = fields.List(fields.Nested(MaintenanceRunSchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)
