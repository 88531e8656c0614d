"""Schemas of the file endpoints."""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from api.common_schemas import PageQuerySchema, PaginationSchema
from t2m.signing import KIND_PARAMETERS, LinkKind

FILE_TYPES = ("document", "image", "video", "audio")
FILE_TYPE = validate.OneOf(
    FILE_TYPES, error="Invalid file type. Must be one of: document, image, video, audio"
)


class FileListQuerySchema(PageQuerySchema):
    file_type = fields.Str(validate=FILE_TYPE)


class DownloadQuerySchema(Schema):
    inline = fields.Bool(load_default=False)


class StreamQuerySchema(Schema):
    quality = fields.Str(load_default="auto", metadata={"example": "720p"})


class ThumbnailQuerySchema(Schema):
    size = fields.Str(load_default="medium", validate=validate.OneOf(("small", "medium", "large")))


def _exact_quality(value: str) -> None:
    # The documented pattern's "$" also matches before a final newline in
    # Python: check the value exactly as a signed link will.
    if not KIND_PARAMETERS[LinkKind.RENDITION]["quality"].fullmatch(value):
        raise ValidationError("Use auto, original or a rendition such as 720p")


class SignedUrlRequestSchema(Schema):
    expires_in = fields.Int(
        load_default=3600,
        validate=validate.Range(min=10, max=7 * 24 * 3600, error="Between 10 s and 7 days"),
    )
    kind = fields.Str(
        validate=validate.OneOf([k.value for k in LinkKind]),
        metadata={
            "description": "What the link opens: the original bytes, a thumbnail (size),"
            " a rendition (quality) or a generated video's captions (format). Default:"
            " thumbnail when size is given, rendition when quality is given, captions"
            " when format is given, else original"
        },
    )
    inline = fields.Bool(
        load_default=False, metadata={"description": "Original links only: serve inline"}
    )
    size = fields.Str(validate=validate.OneOf(("small", "medium", "large")))
    format = fields.Str(
        validate=validate.OneOf(("vtt", "srt", "hls")),
        metadata={
            "description": "Captions links: vtt (default) or srt. hls: a link to the video's"
            " HLS master playlist (kind hls), whose playlists carry the signature to every"
            " variant, segment, caption track and seek preview"
        },
    )
    quality = fields.Str(
        validate=[
            validate.Regexp(r"^(auto|original|[0-9]{3,4}p)$"),  # documented
            _exact_quality,
        ]
    )

    @validates_schema
    def _one_kind(self, data: dict[str, Any], **_: Any) -> None:
        # A link opens one thing; a request naming two would be signed as one
        # of them, silently.
        kind = data.get("kind")
        if "size" in data and "quality" in data:
            raise ValidationError("Give size (a thumbnail) or quality (a rendition), not both")
        if "size" in data and kind not in (None, LinkKind.THUMBNAIL):
            raise ValidationError(f"size is for thumbnail links, not {kind} links", "size")
        if "quality" in data and kind not in (None, LinkKind.RENDITION):
            raise ValidationError(f"quality is for rendition links, not {kind} links", "quality")
        if "format" in data and ("size" in data or "quality" in data):
            raise ValidationError("format is for captions links only", "format")
        if data.get("format") == "hls":
            if kind not in (None, LinkKind.HLS):
                raise ValidationError(f"format hls makes an hls link, not a {kind} link", "format")
        elif "format" in data and kind not in (None, LinkKind.CAPTIONS):
            raise ValidationError(f"format is for captions links, not {kind} links", "format")


class SecureQuerySchema(Schema):
    """Documentation only: a signed link is judged by its signature, so a
    missing, repeated or extra parameter is a 403 from the signature check,
    not a 400."""

    class Meta:
        unknown = INCLUDE

    kind = fields.Str(metadata={"description": "Required; set by the link: " + ", ".join(LinkKind)})
    user_id = fields.Str(metadata={"description": "Required; set by the link"})
    expires = fields.Str(metadata={"description": "Required; set by the link"})
    signature = fields.Str(metadata={"description": "Required; set by the link"})
    inline = fields.Str(metadata={"description": "Set by original links: true or false"})
    size = fields.Str(metadata={"description": "Set by thumbnail links"})
    quality = fields.Str(metadata={"description": "Set by rendition links"})
    format = fields.Str(metadata={"description": "Set by captions links: vtt or srt"})


class CleanupRequestSchema(Schema):
    # Bounded so the cut-off date stays a representable datetime.
    older_than_days = fields.Float(validate=validate.Range(min=0, max=36_500))
    file_type = fields.Str(validate=FILE_TYPE)
    dry_run = fields.Bool(load_default=True)


class StreamingLinksSchema(Schema):
    """Where a packaged video streams from (``t2m.hls_links``): in the file
    detail and the root-path content view alike."""

    hls_url = fields.Str(
        allow_none=True,
        metadata={
            "description": "The HLS master playlist (videos, once packaged; null until then)"
        },
    )
    storyboard_vtt_url = fields.Str(
        allow_none=True,
        metadata={"description": "Seek previews: the WebVTT thumbnails track (null: none yet)"},
    )
    storyboard_jpg_url = fields.Str(
        allow_none=True,
        metadata={"description": "Seek previews: the sprite sheet (null: none yet)"},
    )


class FileSummarySchema(Schema):
    id = fields.Str(required=True)
    filename = fields.Str(required=True)
    title = fields.Str(allow_none=True)
    size = fields.Int(required=True)
    content_type = fields.Str(required=True)
    file_type = fields.Str(required=True)
    processing_status = fields.Str(required=True)
    has_thumbnail = fields.Bool()
    created_at = fields.DateTime(required=True)


class FileDetailSchema(FileSummarySchema, StreamingLinksSchema):
    description = fields.Str(allow_none=True)
    subdirectory = fields.Str(allow_none=True)
    source = fields.Str()
    tags = fields.List(fields.Str())
    checksum = fields.Str()
    processing_error = fields.Str(allow_none=True)
    updated_at = fields.DateTime()
    download_count = fields.Int()
    stream_count = fields.Int()
    metadata = fields.Dict()
    renditions = fields.List(fields.Str())
    thumbnails = fields.List(fields.Str())
    download_url = fields.Str()
    stream_url = fields.Str()
    thumbnail_url = fields.Str()
    metadata_url = fields.Str()


class FileListSchema(Schema):
    items = fields.List(fields.Nested(FileSummarySchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)


class BatchUploadSchema(Schema):
    uploaded = fields.List(fields.Nested(FileDetailSchema), required=True)
    count = fields.Int(required=True)


class FileMetadataSchema(Schema):
    content_type = fields.Str(required=True)
    size = fields.Int(required=True)
    checksum = fields.Str(required=True)
    processing_status = fields.Str()
    processing_error = fields.Str(allow_none=True)
    metadata = fields.Dict()


class SignedUrlSchema(Schema):
    url = fields.Str(required=True)
    expires_at = fields.DateTime(required=True)
    expires_in = fields.Int(required=True)
    kind = fields.Str(required=True, validate=validate.OneOf([k.value for k in LinkKind]))


def multipart_body(file_field: str, *, many: bool, extra: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI requestBody for a streamed multipart upload (not parsed by the
    validation middleware, which would read the whole body)."""
    file_schema: dict[str, Any] = {"type": "string", "format": "binary"}
    properties = {
        file_field: {"type": "array", "items": file_schema} if many else file_schema,
        **extra,
    }
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": properties, "required": [file_field]}
            }
        },
    }


UPLOAD_FIELDS: dict[str, Any] = {
    "file_type": {"type": "string", "enum": list(FILE_TYPES)},
    "subdirectory": {"type": "string", "description": "Logical folder label"},
    "title": {"type": "string"},
    "description": {"type": "string"},
    "tags": {"type": "string", "description": "Space- or comma-separated tags"},
}
