"""Domain exceptions.

Raised anywhere (API handlers, db helpers, stages); the API's outermost
middleware maps them once to the error envelope of the spec, using ``code``
and ``status``.  Workers use ``retryable`` to tell permanent failures from
transient ones.
"""

from __future__ import annotations

from typing import Any


class ConfigError(Exception):
    """The environment describes an impossible or unsafe configuration."""


class T2MError(Exception):
    code = "SERVER_ERROR"
    status = 500
    default_message = "Internal server error"
    retryable = False

    def __init__(
        self,
        message: str | None = None,
        details: Any = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)


class ValidationFailed(T2MError):
    code = "VALIDATION_ERROR"
    status = 400
    default_message = "Request validation failed"


class AuthRequired(T2MError):
    code = "AUTH_REQUIRED"
    status = 401
    default_message = "Authentication required"


class AuthInvalid(T2MError):
    code = "AUTH_INVALID"
    status = 401
    default_message = "Invalid authentication token"


class AuthExpired(T2MError):
    code = "AUTH_EXPIRED"
    status = 401
    default_message = "Authentication token expired"


class PermissionDenied(T2MError):
    code = "PERMISSION_DENIED"
    status = 403
    default_message = "Insufficient permissions"


class NotFound(T2MError):
    code = "RESOURCE_NOT_FOUND"
    status = 404
    default_message = "Requested resource not found"


class RegistrationClosed(T2MError):
    code = "REGISTRATION_CLOSED"
    status = 403
    default_message = "Registration is closed on this server; ask an administrator for an account"


class AccountPending(T2MError):
    code = "ACCOUNT_PENDING"
    status = 403
    default_message = "This account is waiting for an administrator's approval"


class MethodNotAllowed(T2MError):
    code = "METHOD_NOT_ALLOWED"
    status = 405
    default_message = "Method not allowed"


class Conflict(T2MError):
    code = "CONFLICT"
    status = 409
    default_message = "The resource is not in a state that allows this"


class PayloadTooLarge(T2MError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413
    default_message = "Request body too large"


class QuotaExceeded(T2MError):
    """A per-user quota would be exceeded.

    413 for what is stored (bytes, files: waiting does not help, deleting
    does); 429 with ``Retry-After`` for what frees up with time (concurrent
    jobs, daily render seconds).  ``details`` names the quota, its use and limit.
    """

    code = "QUOTA_EXCEEDED"
    status = 413
    default_message = "Quota exceeded"

    def __init__(
        self,
        message: str | None = None,
        details: Any = None,
        *,
        headers: dict[str, str] | None = None,
        status: int = 413,
    ) -> None:
        super().__init__(message, details, headers=headers)
        self.status = status


class UnsupportedMediaType(T2MError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    status = 415
    default_message = "Unsupported content type"


class RangeNotSatisfiable(T2MError):
    code = "RANGE_NOT_SATISFIABLE"
    status = 416
    default_message = "Requested range not satisfiable"


class RateLimited(T2MError):
    code = "RATE_LIMIT_EXCEEDED"
    status = 429
    default_message = "Rate limit exceeded"


class ServiceUnavailable(T2MError):
    code = "SERVICE_UNAVAILABLE"
    status = 503
    default_message = "Service temporarily unavailable"
    retryable = True


class StorageError(T2MError):
    """The storage backend failed (unreachable, full, refused).

    ``message`` names keys and backend errors, for the log; a client is told
    only :attr:`public_message`.
    """

    code = "SERVICE_UNAVAILABLE"
    status = 503
    default_message = "Storage temporarily unavailable"
    retryable = True

    def __init__(
        self,
        message: str | None = None,
        details: Any = None,
        *,
        headers: dict[str, str] | None = None,
        full: bool = False,
    ) -> None:
        super().__init__(message, details, headers=headers)
        self.full = full

    @property
    def public_message(self) -> str:
        if self.full:
            return "Storage is full; nothing was stored, try again later"
        return "Storage temporarily unavailable; try again later"
