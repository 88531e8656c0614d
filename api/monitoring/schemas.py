"""Schemas of the monitoring endpoints: system metrics, queues, performance,
connections, event loop, and the recent log records."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from api.common_schemas import PageQuerySchema, PaginationSchema

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DETAIL = fields.Str(
    validate=validate.OneOf(["summary", "full"]),
    metadata={
        "description": "summary (anyone) or full (admin only); default: full for an "
        "admin, summary for everyone else"
    },
)


class DetailQuerySchema(Schema):
    detail = DETAIL


class PerformanceQuerySchema(Schema):
    detail = DETAIL
    hours = fields.Int(
        load_default=1,
        validate=validate.Range(min=1, max=24 * 30, error="hours must be between 1 and 720"),
        metadata={"example": 1},
    )


class LogsQuerySchema(PageQuerySchema):
    level = fields.Str(
        validate=validate.OneOf(LEVELS),
        metadata={"description": "Minimum level", "example": "WARNING"},
    )
    since = fields.AwareDateTime(
        default_timezone=UTC,
        metadata={"description": "ISO-8601; UTC when no offset", "example": "2026-01-15T10:00:00Z"},
    )
    until = fields.AwareDateTime(
        default_timezone=UTC, metadata={"description": "ISO-8601; UTC when no offset"}
    )
    logger = fields.Str(
        validate=validate.Length(max=200),
        metadata={"description": "Logger name prefix", "example": "api."},
    )
    request_id = fields.Str(validate=validate.Length(max=64))

    @pre_load
    def _upper_level(self, data: Any, **_: Any) -> Any:
        # Level names are accepted in any case ("warning").
        level = data.get("level") if hasattr(data, "get") else None
        if isinstance(level, str):
            data = {**data, "level": level.upper()}
        return data

    @validates_schema
    def _window(self, data: dict[str, Any], **_: Any) -> None:
        if "since" in data and "until" in data and data["since"] > data["until"]:
            raise ValidationError("since must not be after until", "since")


# -- responses -------------------------------------------------------------


class LatencySchema(Schema):
    mean_ms = fields.Float(allow_none=True)
    p50_ms = fields.Float(allow_none=True)
    p95_ms = fields.Float(allow_none=True)
    p99_ms = fields.Float(allow_none=True)
    max_ms = fields.Float(allow_none=True)


class RequestSummarySchema(LatencySchema):
    since = fields.Float(required=True, metadata={"description": "epoch seconds"})
    requests = fields.Int(required=True)
    errors = fields.Int(required=True, metadata={"description": "5xx answers"})
    requests_per_second_1m = fields.Float(required=True)
    requests_per_second_since_start = fields.Float(required=True)


class RouteStatsSchema(LatencySchema):
    method = fields.Str(required=True)
    route = fields.Str(required=True, metadata={"example": "/api/v1/files/{file_id}"})
    requests = fields.Int(required=True)
    errors = fields.Int(required=True)
    cancelled = fields.Int(required=True)
    status = fields.Dict(keys=fields.Str(), values=fields.Int(), required=True)


class StageStatsSchema(Schema):
    started = fields.Int(required=True)
    completed = fields.Int(required=True)
    failed = fields.Int(required=True)
    failed_permanently = fields.Int()
    duration_s = fields.Dict(keys=fields.Str(), values=fields.Float(allow_none=True))


class SystemMetricsSchema(Schema):
    status = fields.Str(required=True, metadata={"enum": ["ok"]})
    detail = fields.Str(required=True, metadata={"enum": ["summary", "full"]})
    timestamp = fields.DateTime(required=True)
    cpu_usage = fields.Float(required=True, metadata={"description": "percent, whole host"})
    memory_usage = fields.Float(required=True, metadata={"description": "percent"})
    disk_usage = fields.Float(required=True, metadata={"description": "percent"})
    uptime_s = fields.Float(required=True)
    requests = fields.Nested(RequestSummarySchema, required=True)
    jobs = fields.Dict(keys=fields.Str(), values=fields.Int(), required=True)
    window_hours = fields.Float(required=True)
    # Admin only:
    scope = fields.Str()
    pid = fields.Int()
    host = fields.Str()
    host_stats = fields.Dict()
    routes = fields.List(fields.Nested(RouteStatsSchema))
    stages = fields.Dict(keys=fields.Str(), values=fields.Nested(StageStatsSchema))
    errors = fields.Dict()


class QueueCountsSchema(Schema):
    ready = fields.Int(required=True)
    delayed = fields.Int(required=True)
    in_flight = fields.Int(required=True)
    orphaned = fields.Int(required=True)
    dead_letter = fields.Int(required=True)


class QueueDetailSchema(QueueCountsSchema):
    workers = fields.Int(required=True)
    mean_stage_s = fields.Float(allow_none=True)
    estimated_wait_s = fields.Float(allow_none=True)


class WorkerSchema(Schema):
    host = fields.Str(allow_none=True)
    pid = fields.Int(allow_none=True)
    queues = fields.List(fields.Str(), required=True)
    started_at = fields.Float(allow_none=True)
    last_beat_at = fields.Float(allow_none=True)


class QueueStatusSchema(Schema):
    status = fields.Str(required=True, metadata={"enum": ["ok", "no_workers", "unsupported"]})
    detail = fields.Str(required=True)
    timestamp = fields.DateTime(required=True)
    broker = fields.Str(
        metadata={"enum": ["redis", "rabbitmq", "stub"], "description": "Administrators only"}
    )
    pending_jobs = fields.Int(
        required=True, metadata={"description": "ready + delayed messages, all queues"}
    )
    totals = fields.Nested(QueueCountsSchema, required=True)
    workers_alive = fields.Int(required=True)
    # Admin only:
    queues = fields.Dict(keys=fields.Str(), values=fields.Nested(QueueDetailSchema))
    workers = fields.List(fields.Nested(WorkerSchema))
    estimated_wait_method = fields.Str()


class PerformanceSchema(Schema):
    detail = fields.Str(required=True)
    timestamp = fields.DateTime(required=True)
    window_hours = fields.Int(required=True)
    requests = fields.Nested(RequestSummarySchema, required=True)
    jobs = fields.Dict(keys=fields.Str(), values=fields.Int(), required=True)
    # Admin only:
    scope = fields.Str()
    pid = fields.Int()
    host = fields.Str()
    routes = fields.List(fields.Nested(RouteStatsSchema))
    stages = fields.Dict(keys=fields.Str(), values=fields.Nested(StageStatsSchema))
    streaming = fields.Dict()


class ConnectionsSchema(Schema):
    detail = fields.Str(required=True)
    timestamp = fields.DateTime(required=True)
    database = fields.Dict(required=True)
    redis = fields.Dict(required=True)
    scope = fields.Str()
    pid = fields.Int()
    host = fields.Str()


class AsyncStatsSchema(Schema):
    detail = fields.Str(required=True)
    timestamp = fields.DateTime(required=True)
    event_loop_lag = fields.Dict(required=True)
    tasks = fields.Dict(required=True)
    scope = fields.Str()
    pid = fields.Int()
    host = fields.Str()


class LogRecordSchema(Schema):
    id = fields.Int(required=True)
    timestamp = fields.DateTime(required=True)
    level = fields.Str(required=True)
    logger = fields.Str(required=True)
    message = fields.Str(required=True)
    request_id = fields.Str(required=True)
    thread = fields.Str(allow_none=True)
    exc = fields.Str(allow_none=True)


class LogListSchema(Schema):
    scope = fields.Str(required=True)
    pid = fields.Int(required=True)
    host = fields.Str(required=True)
    capacity = fields.Int(required=True)
    items = fields.List(fields.Nested(LogRecordSchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)
