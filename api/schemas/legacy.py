"""Schemas of the root-path aliases (api-workflow-guide.md shapes)."""

from __future__ import annotations

from marshmallow import Schema, fields


class LegacyTokenSchema(Schema):
    access_token = fields.Str(required=True)
    refresh_token = fields.Str(required=True)
    token_type = fields.Str(required=True, metadata={"example": "bearer"})
    expires_in = fields.Int(required=True)
