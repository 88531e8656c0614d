"""Object storage: one interface, a local-directory and an S3 backend.

Build the backend once per process with :func:`build_storage` and close it with
``await storage.aclose()`` on shutdown.
"""

from __future__ import annotations

import re
import secrets

from t2m.errors import ConfigError
from t2m.settings import Settings
from t2m.storage.base import (
    DEFAULT_CHUNK_SIZE,
    SEGMENTS,
    ObjectInfo,
    PutResult,
    Storage,
    check_range,
    segment_of,
    validate_key,
    validate_prefix,
)
from t2m.storage.local import LocalStorage

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def build_storage(settings: Settings) -> Storage:
    """The backend selected by ``settings.storage_backend`` (``local`` or ``s3``)."""
    backend = settings.storage_backend.strip().lower()
    if backend == "local":
        return LocalStorage(settings.storage_root)
    if backend == "s3":
        from t2m.storage.s3 import S3Storage  # aioboto3 is only imported when used

        return S3Storage(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url or None,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id or None,
            secret_access_key=settings.s3_secret_access_key or None,
            create_bucket=settings.is_dev,
        )
    raise ConfigError(f"unknown storage backend {settings.storage_backend!r} (local or s3)")


def content_key(sha256_hex: str) -> str:
    """Content-addressed key of an upload: ``uploads/ab/abcdef…``."""
    digest = sha256_hex.lower()
    if not _SHA256_HEX.fullmatch(digest):
        raise ValueError(f"not a sha256 hex digest: {sha256_hex!r}")
    return f"uploads/{digest[:2]}/{digest}"


def temp_upload_key() -> str:
    """A fresh key under ``tmp/`` to stream an upload to before its hash is known."""
    return f"tmp/uploads/{secrets.token_hex(16)}"


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "SEGMENTS",
    "LocalStorage",
    "ObjectInfo",
    "PutResult",
    "Storage",
    "build_storage",
    "check_range",
    "content_key",
    "segment_of",
    "temp_upload_key",
    "validate_key",
    "validate_prefix",
]
