"""Schemas of the system endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields


class ComponentHealthSchema(Schema):
    status = fields.Str(required=True, metadata={"enum": ["healthy", "degraded", "unhealthy"]})
    latency_ms = fields.Float(required=True)
    alive = fields.Int(metadata={"description": "workers only: live worker processes"})
    # Administrators only:
    error = fields.Str()
    backend = fields.Str()
    queues_without_workers = fields.List(fields.Str())
    workers = fields.List(fields.Dict(), metadata={"description": "host, pid, queues"})


class LivenessSchema(Schema):
    status = fields.Str(required=True, metadata={"enum": ["alive"]})
    timestamp = fields.DateTime(required=True)


class HealthSchema(Schema):
    status = fields.Str(required=True, metadata={"enum": ["healthy", "degraded", "unhealthy"]})
    timestamp = fields.DateTime(required=True)
    version = fields.Str(metadata={"description": "Administrators only"})
    components = fields.Dict(keys=fields.Str(), values=fields.Nested(ComponentHealthSchema))
