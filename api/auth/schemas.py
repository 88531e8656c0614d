"""Request and response schemas of the authentication endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

USERNAME = validate.Regexp(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$",
    error="3–64 characters: letters, digits, '_', '.', '-'; starting with a letter or digit",
)


class RegisterSchema(Schema):
    username = fields.Str(required=True, validate=USERNAME)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.Str(
        required=True,
        load_only=True,
        validate=validate.Length(min=8, max=256, error="Password must be 8–256 characters"),
    )
    full_name = fields.Str(validate=validate.Length(max=200), load_default=None)


class LoginSchema(Schema):
    username = fields.Str(
        required=True,
        validate=validate.Length(min=1, max=254),
        metadata={"description": "Username or e-mail address"},
    )
    password = fields.Str(required=True, load_only=True, validate=validate.Length(min=1, max=256))


class RefreshSchema(Schema):
    refresh_token = fields.Str(required=True, validate=validate.Length(min=1, max=4096))


class PasswordChangeSchema(Schema):
    current_password = fields.Str(
        required=True, load_only=True, validate=validate.Length(min=1, max=256)
    )
    new_password = fields.Str(
        required=True,
        load_only=True,
        validate=validate.Length(min=8, max=256, error="Password must be 8–256 characters"),
    )


class LogoutSchema(Schema):
    refresh_token = fields.Str(validate=validate.Length(min=1, max=4096))


class UserProfileSchema(Schema):
    id = fields.Str(required=True)
    username = fields.Str(required=True)
    full_name = fields.Str(allow_none=True)
    email = fields.Str(required=True)
    image_url = fields.Str(allow_none=True)
    email_verified = fields.Bool(required=True)
    role = fields.Str(required=True)
    created_at = fields.DateTime(allow_none=True)
    last_sign_in_at = fields.DateTime(allow_none=True)


class TokenPairSchema(Schema):
    access_token = fields.Str(required=True)
    refresh_token = fields.Str(required=True)
    token_type = fields.Str(required=True, metadata={"example": "bearer"})
    expires_in = fields.Int(required=True, metadata={"description": "Access token lifetime, s"})
    user = fields.Nested(UserProfileSchema)


class RequestContextSchema(Schema):
    path = fields.Str()
    method = fields.Str()
    client_ip = fields.Str(allow_none=True)


class AuthStatusSchema(Schema):
    authenticated = fields.Bool(required=True)
    user_id = fields.Str()
    email = fields.Str()
    email_verified = fields.Bool()
    message = fields.Str()
    request_context = fields.Nested(RequestContextSchema)


class PermissionsSchema(Schema):
    user_id = fields.Str(required=True)
    role = fields.Str(required=True)
    permissions = fields.List(fields.Str(), required=True)
    access_level = fields.Str(required=True)


class ProtectedTestSchema(Schema):
    message = fields.Str(required=True)
    user_id = fields.Str(required=True)
    email = fields.Str()
    email_verified = fields.Bool()
    timestamp = fields.DateTime(required=True)


class VerifySchema(Schema):
    verified = fields.Bool(required=True)
    user_id = fields.Str(required=True)
    email = fields.Str()
    email_verified = fields.Bool()
    message = fields.Str()


class AuthHealthSchema(Schema):
    status = fields.Str(required=True)
    provider = fields.Dict()
    message = fields.Str()


class RegisteredUserSchema(UserProfileSchema):
    pending_approval = fields.Bool(
        required=True,
        metadata={"description": "True when an administrator must approve the account first"},
    )


class UsageLimitSchema(Schema):
    used = fields.Float(required=True, metadata={"description": "Current use"})
    limit = fields.Int(required=True, metadata={"description": "The user's limit"})


class RenderUsageSchema(UsageLimitSchema):
    resets_in = fields.Int(
        required=True, metadata={"description": "Seconds until the count restarts (00:00 UTC)"}
    )


class QuotaSchema(Schema):
    stored_bytes = fields.Nested(
        UsageLimitSchema,
        required=True,
        metadata={"description": "Bytes of your files (uploads and generated videos)"},
    )
    files = fields.Nested(UsageLimitSchema, required=True)
    render_seconds_today = fields.Nested(
        RenderUsageSchema,
        required=True,
        metadata={"description": "Seconds of video planned by jobs submitted today (UTC)"},
    )
    concurrent_jobs = fields.Nested(
        UsageLimitSchema, required=True, metadata={"description": "Queued + processing jobs"}
    )


class MeSchema(UserProfileSchema):
    quota = fields.Nested(QuotaSchema, required=True)
