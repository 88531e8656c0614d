"""Schemas of feedback, recommendations and the recommender metrics."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

EVENT_TYPES = ("view", "like", "dislike", "share", "skip", "tag_accept", "tag_reject")


class FeedbackSchema(Schema):
    content_id = fields.Str(required=True, validate=validate.Length(min=1, max=64))
    user_id = fields.Str(
        validate=validate.Length(max=128),
        metadata={"description": "Viewer reference (root path); /api/v1 uses the token's user"},
    )
    event_type = fields.Str(
        required=True,
        validate=validate.OneOf(EVENT_TYPES, error="Must be one of: " + ", ".join(EVENT_TYPES)),
    )
    watch_time_ms = fields.Int(validate=validate.Range(min=0, error="Must be 0 or more"))
    tags = fields.List(
        fields.Str(validate=validate.Length(min=1, max=50)),
        load_default=list,
        validate=validate.Length(max=20),
    )
    recommendation_id = fields.Str(validate=validate.Length(max=64))

    @validates_schema
    def _tag_events_name_tags(self, data: dict[str, object], **kwargs: object) -> None:
        if data["event_type"] in ("tag_accept", "tag_reject") and not data.get("tags"):
            raise ValidationError("tag_accept and tag_reject need the tags they answer", "tags")


class RecommendQuerySchema(Schema):
    k = fields.Int(load_default=5, validate=validate.Range(min=1, max=20))


class RecommendedTagSchema(Schema):
    tag = fields.Str(required=True)
    score = fields.Float(required=True)
    propensity = fields.Float(required=True)


class RecommendationSchema(Schema):
    content_id = fields.Str(required=True)
    recommendation_id = fields.Str(required=True)
    model_version = fields.Int(required=True)
    explored = fields.Bool(required=True)
    tags = fields.List(fields.Nested(RecommendedTagSchema), required=True)
    existing_tags = fields.List(fields.Str())


class FeedbackRecordedSchema(Schema):
    event_id = fields.Int(required=True)
    status = fields.Str(required=True)


class VocabularyTagsSchema(Schema):
    """Tags an administrator adds to (or promotes into) the global vocabulary."""

    tags = fields.List(
        fields.Str(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=500),
    )


class GlobalTagSchema(Schema):
    tag = fields.Str(required=True)
    source = fields.Str(required=True, metadata={"description": "curated or promoted"})
    uses = fields.Int(required=True)
    accepts = fields.Int(required=True)
    rejects = fields.Int(required=True)
    added_by = fields.Str(allow_none=True)
    created_at = fields.DateTime(required=True)


class GlobalVocabularySchema(Schema):
    tags = fields.List(fields.Nested(GlobalTagSchema), required=True)
    total = fields.Int(required=True)


class VocabularyChangeSchema(Schema):
    added = fields.List(fields.Str(), required=True)
    already_present = fields.List(fields.Str(), required=True)


class PromotionQuerySchema(Schema):
    min_users = fields.Int(load_default=3, validate=validate.Range(min=2, max=1_000_000))
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=1000))


class PromotionCandidateSchema(Schema):
    tag = fields.Str(required=True)
    users = fields.Int(required=True, metadata={"description": "distinct users with the tag"})
    uses = fields.Int(required=True)


class PromotionCandidatesSchema(Schema):
    candidates = fields.List(fields.Nested(PromotionCandidateSchema), required=True)
