"""Schemas of the cache, deduplication and optimize endpoints."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from t2m.ids import is_id

# What a cache key pattern may hold: key characters and glob wildcards, no
# brackets or escapes (a pattern is matched under the cache's own prefix).
PATTERN = validate.Regexp(
    r"^[A-Za-z0-9_.:*?\-]{1,200}$",
    error="1 to 200 characters: letters, digits, '_', '-', '.', ':', '*' or '?'",
)


def _user_id(value: str) -> None:
    if not is_id(value, "usr"):
        raise ValidationError("Not a user id (usr_ followed by 24 hex digits)")


class InvalidateQuerySchema(Schema):
    pattern = fields.Str(
        validate=PATTERN,
        metadata={
            "description": "Glob over '{scope}:{kind}:{generations}:{args}' of cache keys;"
            " e.g. 'usr_…:*' (one user's entries) or '*:file:*' (every file detail)",
            "example": "*:video_stats:*",
        },
    )
    user_id = fields.Str(
        validate=_user_id,
        metadata={"description": "Retire every cached read of this user (a generation bump)"},
    )


class WarmQuerySchema(Schema):
    users = fields.Int(
        load_default=50,
        validate=validate.Range(min=0, max=1000, error="0 to 1000"),
        metadata={"description": "How many recently active users' reads to warm"},
    )


class CacheKindSchema(Schema):
    hits = fields.Int(required=True)
    misses = fields.Int(required=True)
    sets = fields.Int(required=True)
    hit_rate = fields.Float(allow_none=True, required=True)


class CoalescingSchema(Schema):
    in_flight = fields.Int(required=True)
    computations = fields.Int(required=True)
    coalesced = fields.Int(required=True)
    by_kind = fields.Dict(keys=fields.Str(), values=fields.Dict())


class CacheStatusSchema(Schema):
    enabled = fields.Bool(required=True)
    backend = fields.Str(required=True, metadata={"example": "redis"})
    status = fields.Str(required=True, metadata={"example": "ok"})
    hit_rate = fields.Float(allow_none=True, required=True)
    detail = fields.Str(metadata={"description": "Why the cache is unavailable"})
    # Administrators only:
    ttl_s = fields.Dict(keys=fields.Str(), values=fields.Int())
    key_layout = fields.Str()
    invalidation = fields.Str()
    counters = fields.Dict(keys=fields.Str(), values=fields.Int())
    process = fields.Dict()
    memory = fields.Dict()


class CacheMetricsSchema(Schema):
    hits = fields.Int(required=True)
    misses = fields.Int(required=True)
    hit_rate = fields.Float(allow_none=True, required=True)
    # Administrators only:
    sets = fields.Int()
    invalidations = fields.Int()
    by_kind = fields.Dict(keys=fields.Str(), values=fields.Nested(CacheKindSchema))
    coalescing = fields.Nested(CoalescingSchema)
    process = fields.Dict()


class CacheReportSchema(Schema):
    status = fields.Str(required=True)
    hit_rate = fields.Float(allow_none=True, required=True)
    summary = fields.Str(required=True)
    # Administrators only:
    metrics = fields.Nested(CacheMetricsSchema)
    entries = fields.Dict(metadata={"description": "Live and stale entries, by kind"})
    memory = fields.Dict()
    recommendations = fields.List(fields.Str())


class DeduplicationSchema(Schema):
    scope = fields.Str(
        required=True,
        validate=validate.OneOf(["own", "global"]),
        metadata={"description": "own: the caller's files only; global: the whole store"},
    )
    saved_bytes = fields.Int(required=True)
    dedup_ratio = fields.Float(allow_none=True, required=True)
    files = fields.Int(metadata={"description": "Live files counted (scope own)"})
    logical_bytes = fields.Int(metadata={"description": "Their sizes added up (scope own)"})
    stored_bytes = fields.Int(metadata={"description": "Each distinct content once (scope own)"})
    # Administrators only:
    coalesced_requests = fields.Int()
    blobs = fields.Dict(metadata={"description": "Files against stored blobs"})
    top_shared_blobs = fields.List(fields.Dict())
    coalescing = fields.Nested(CoalescingSchema)


class InvalidateResultSchema(Schema):
    scope = fields.Str(required=True, metadata={"example": "user"})
    user_id = fields.Str(allow_none=True)
    pattern = fields.Dict(allow_none=True)
    epoch = fields.Int(allow_none=True)


class WarmResultSchema(Schema):
    users = fields.Int()
    entries = fields.Int()
    bytes = fields.Int()
    duration_s = fields.Float()
    skipped = fields.Str()


class OptimizeResultSchema(Schema):
    analyzed = fields.List(fields.Str(), required=True)
    analyze_s = fields.Float(required=True)
    cache = fields.Dict(required=True)
    pruned = fields.Int(required=True)
    duration_s = fields.Float(required=True)
