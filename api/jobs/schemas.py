"""Schemas of the job and video endpoints."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.common_schemas import PageQuerySchema, PaginationSchema
from pipeline.stages.narrate.voices import LANGUAGES
from t2m.job_status import JobStatus

MAX_SCRIPT_CHARS = 100 * 1024
HEX_COLOUR = validate.Regexp(r"^#[0-9a-fA-F]{6}$", error="A colour like #1a2b3c")
JOB_STATUSES = tuple(status.value for status in JobStatus)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class StyleSchema(Schema):
    font = fields.Str(validate=validate.Length(min=1, max=64))
    text_color = fields.Str(validate=HEX_COLOUR)
    background_colors = fields.List(
        fields.Str(validate=HEX_COLOUR), validate=validate.Length(min=1, max=8)
    )
    text_position = fields.Str(validate=validate.OneOf(("top", "center", "bottom")))
    font_scale = fields.Float(validate=validate.Range(min=0.5, max=2.0))


class SceneInputSchema(Schema):
    text = fields.Str(load_default="", validate=validate.Length(max=MAX_SCRIPT_CHARS))
    narration = fields.Str(
        allow_none=True,
        validate=validate.Length(max=5000),
        metadata={"description": "Spoken instead of the text; an empty string is silence"},
    )
    duration = fields.Float(validate=validate.Range(min=0.5, max=300))
    background = fields.Str(
        validate=validate.Length(max=200),
        metadata={"description": "#RRGGBB, '#RRGGBB #RRGGBB' or asset:<file id>"},
    )
    transition = fields.Str(validate=validate.OneOf(("crossfade", "cut")))
    voice = fields.Str(validate=validate.Length(min=1, max=64))


SCENES_EXAMPLE = [
    {"text": "# Welcome\nT2M turns text into video.", "duration": 4},
    {
        "text": "Every scene is spoken.",
        "narration": "Every scene is read aloud.",
        "voice": "en-us-joe",
    },
    {"text": "Silent card", "narration": "", "background": "#1F3B73", "transition": "cut"},
]


class GenerateVideoSchema(Schema):
    script = fields.Str(validate=validate.Length(min=1, max=MAX_SCRIPT_CHARS))
    prompt = fields.Str(
        validate=validate.Length(min=1, max=MAX_SCRIPT_CHARS),
        metadata={"description": "Used as the script when 'script' is absent (and spoken)"},
    )
    scenes = fields.List(
        fields.Nested(SceneInputSchema),
        validate=validate.Length(min=1, max=200),
        metadata={
            "description": "The script as data, instead of 'script'",
            "example": SCENES_EXAMPLE,
        },
    )
    voice = fields.Str(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "Voice id (GET /api/v1/voices); default: by language"},
    )
    narration = fields.Str(
        load_default="auto",
        validate=validate.OneOf(("auto", "none")),
        metadata={"description": "'auto' speaks every scene; 'none' makes a silent video"},
    )
    speech_rate = fields.Float(
        validate=validate.Range(min=0.5, max=2.0), metadata={"description": "1.0 = normal speed"}
    )
    language = fields.Str(
        validate=validate.Length(min=2, max=8),
        metadata={"description": "Language of the narration (default: detected per scene)"},
    )
    title = fields.Str(validate=validate.Length(max=300), load_default=None)
    quality = fields.Str(load_default="720p", validate=validate.OneOf(("480p", "720p", "1080p")))
    aspect = fields.Str(load_default="16:9", validate=validate.OneOf(("16:9", "9:16", "1:1")))
    duration = fields.Float(
        validate=validate.Range(min=1, max=3600), metadata={"description": "Target seconds"}
    )
    assets = fields.List(
        fields.Str(validate=validate.Length(max=64)),
        load_default=list,
        validate=validate.Length(max=20),
        metadata={"description": "Ids of your uploaded images, clips or audio"},
    )
    music = fields.Str(
        validate=validate.Length(max=64), metadata={"description": "Id of an uploaded audio file"}
    )
    style = fields.Nested(StyleSchema, load_default=dict)
    subtitles = fields.Str(
        load_default="none", validate=validate.OneOf(("none", "burned", "sidecar", "karaoke"))
    )
    webhook_url = fields.Url(schemes={"http", "https"}, validate=validate.Length(max=2000))
    tags = fields.List(
        fields.Str(validate=validate.Length(min=1, max=50)),
        load_default=list,
        validate=validate.Length(max=20),
    )

    @validates_schema
    def _script_or_prompt(self, data: dict[str, Any], **kwargs: Any) -> None:
        given = [k for k in ("script", "scenes") if data.get(k)]
        if len(given) > 1:
            raise ValidationError("Give either 'script' or 'scenes', not both", "scenes")
        if not (given or data.get("prompt")):
            raise ValidationError(
                "Give the script text as 'script' (or 'prompt'), or 'scenes'", "script"
            )
        if data.get("language") and data["language"] not in LANGUAGES:
            raise ValidationError(f"one of {', '.join(LANGUAGES)}", "language")


class JobListQuerySchema(PageQuerySchema):
    status = fields.Str(validate=validate.OneOf(JOB_STATUSES))
    type = fields.Str(validate=validate.OneOf(("video_generation",)))


class JobLogsQuerySchema(Schema):
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=1000))
    offset = fields.Int(load_default=0, validate=validate.Range(min=0))
    level = fields.Str(validate=validate.OneOf(LOG_LEVELS))


class JobSchema(Schema):
    id = fields.Str(required=True)
    type = fields.Str(required=True)
    status = fields.Str(required=True, metadata={"enum": list(JOB_STATUSES)})
    progress = fields.Int(required=True)
    current_stage = fields.Str(allow_none=True)
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    duration = fields.Float(allow_none=True)
    render_seconds = fields.Float(allow_none=True)
    parameters = fields.Dict()
    storyboard = fields.Dict(allow_none=True)
    result = fields.Dict(
        allow_none=True,
        metadata={
            "description": "A completed video: file_id, file_size, duration, renditions,"
            " download_url, stream_url, thumbnail_url, captions (when it has them); once the"
            " package worker is done also hls_url (the HLS master playlist) and"
            " storyboard_vtt_url / storyboard_jpg_url (seek previews)"
        },
    )
    error = fields.Str(allow_none=True)
    links = fields.Dict()
    webhook = fields.Dict(
        metadata={
            "description": "Generate response only, when webhook_url was given: the job's"
            " one-off subscription (id, url, events) and its signing secret"
        }
    )


class JobListSchema(Schema):
    items = fields.List(fields.Nested(JobSchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)


class JobLogEntrySchema(Schema):
    timestamp = fields.DateTime(required=True)
    level = fields.Str(required=True)
    message = fields.Str(required=True)
    details = fields.Dict(allow_none=True)


class JobLogsSchema(Schema):
    logs = fields.List(fields.Nested(JobLogEntrySchema), required=True)
    total_logs = fields.Int(required=True)
    has_more = fields.Bool(required=True)


class SubmittedJobSchema(JobSchema):
    # The spec names the id of a submitted job ``job_id``; ``id`` is kept so
    # the body is also a plain job.
    job_id = fields.Str(required=True)
    webhook = fields.Dict(
        metadata={"description": "The one-off subscription of webhook_url, with its secret"}
    )


class GeneratedSchema(Schema):
    message = fields.Str()
    job_id = fields.Str(required=True)
    status = fields.Str(required=True)
    content_id = fields.Str(required=True)
    status_url = fields.Str(required=True)
    download_url = fields.Str(required=True)
    stream_url = fields.Str(required=True)
