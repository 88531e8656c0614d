"""Schemas of the root-path aliases (api-workflow-guide.md shapes)."""

from __future__ import annotations

from marshmallow import Schema, fields

from api.files.schemas import StreamingLinksSchema


class LegacyTokenSchema(Schema):
    access_token = fields.Str(required=True)
    refresh_token = fields.Str(required=True)
    token_type = fields.Str(required=True, metadata={"example": "bearer"})
    expires_in = fields.Int(required=True)


class ContentSchema(StreamingLinksSchema):
    content_id = fields.Str(required=True)
    title = fields.Str(allow_none=True)
    description = fields.Str(allow_none=True)
    filename = fields.Str()
    content_type = fields.Str()
    file_type = fields.Str()
    size = fields.Int()
    tags = fields.List(fields.Str())
    processing_status = fields.Str()
    metadata = fields.Dict()
    created_at = fields.DateTime()
    download_url = fields.Str()
    stream_url = fields.Str()
    thumbnail_url = fields.Str(allow_none=True)
    message = fields.Str()


class ContentListSchema(Schema):
    contents = fields.List(fields.Nested(ContentSchema), required=True)
    total = fields.Int(required=True)
    page = fields.Int(required=True)
    items_per_page = fields.Int(required=True)
