"""Schemas of the voice endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields


class VoiceSchema(Schema):
    id = fields.Str(required=True, metadata={"example": "en-us-joe"})
    engine = fields.Str(required=True, metadata={"enum": ["piper", "espeak-ng"]})
    languages = fields.List(fields.Str(), required=True, metadata={"example": ["en"]})
    quality = fields.Str(required=True, metadata={"enum": ["neural", "formant"]})
    licence = fields.Str(required=True)


class VoiceListSchema(Schema):
    items = fields.List(fields.Nested(VoiceSchema), required=True)
