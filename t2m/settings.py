"""Service configuration, built once from the environment.

Every tunable of T2M is a field of :class:`Settings`; nothing else reads
``os.environ``.  Infrastructure is given as URLs.  Secrets have no baked-in
production default: in dev mode (``T2M_ENV=dev``, the default) missing secrets
are generated once and persisted under the var directory so restarts keep
sessions and signed links valid.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from t2m.errors import ConfigError

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
# Shortest JWT_SECRET / SIGNING_SECRET / METRICS_TOKEN accepted (256 bits).
MIN_SECRET_BYTES = 32
_FALSE = {"0", "false", "no", "off", ""}


def _bool(raw: str, name: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be a boolean, got {raw!r}")


def _int(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _float(raw: str, name: str) -> float:
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _count(raw: str, name: str) -> int:
    value = _int(raw, name)
    if value < 0:
        raise ConfigError(f"{name} must be 0 or more, got {raw!r}")
    return value


REGISTRATION_MODES = ("open", "approval", "closed")


def _choice(raw: str, name: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return value


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _cidrs(raw: str) -> tuple[str, ...]:
    """Comma-separated networks, checked at start so a typo is not a silent hole."""
    import ipaddress

    networks = _csv(raw)
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            raise ConfigError(f"WEBHOOK_ALLOWED_CIDRS: {network!r} is not a network") from exc
    return networks


@dataclass(frozen=True)
class Settings:
    env: str = "dev"
    var_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = "http://127.0.0.1:8000"

    database_url: str = ""
    db_pool_min: int = 1
    db_pool_max: int = 10
    redis_url: str = ""
    # Dramatiq broker; defaults to REDIS_URL.  amqp:// selects RabbitMQ.
    broker_url: str = ""
    # Prefix of every Redis key T2M writes, so several deployments (or a test
    # run) can share one Redis without touching each other's keys.
    redis_namespace: str = "t2m"
    # How long a silent worker keeps its unacknowledged messages before the
    # broker hands them to another worker (kill -9 recovery time).
    broker_heartbeat_timeout_ms: int = 60_000
    # Chance per million broker calls to run that recovery (Dramatiq's
    # default, 1000, can leave a dead worker's message waiting for minutes on
    # a quiet system).
    broker_maintenance_chance: int = 10_000

    jwt_secret: str = ""
    signing_secret: str = ""
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 14 * 24 * 3600
    jwt_issuer: str = "t2m"
    oidc_jwks_url: str = ""
    oidc_issuer: str = ""
    oidc_audience: str = ""
    login_max_failures: int = 5
    login_failure_window_s: int = 900
    # Cap of the per-account delay that grows with failures from any address.
    login_max_delay_s: float = 8.0

    allow_anonymous: bool = False
    admin_username: str = "admin"
    admin_email: str = "admin@localhost"

    max_request_body: int = 1024 * 1024
    max_upload_bytes: int = 2 * 1024**3
    # Text fields of one upload form: how many, and their bytes together
    # (names included); past either the request is answered 413 at once.
    upload_max_fields: int = 32
    upload_max_fields_bytes: int = 64 * 1024

    # Who may create an account: "open" (anyone), "approval" (accounts wait
    # for an admin's approval before they can sign in) or "closed".
    registration: str = "open"
    # Per-user quotas: the defaults of every user without an override of their
    # own (admins set those through /api/v1/admin/users/{id}/quota).  Stored
    # bytes and files count the user's files (uploads and generated videos);
    # render seconds are seconds of output video planned per UTC day;
    # concurrent jobs are queued + processing jobs.
    quota_stored_bytes: int = 10 * 1024**3
    quota_files: int = 10_000
    quota_render_seconds_per_day: int = 3600
    quota_concurrent_jobs: int = 3

    storage_backend: str = "local"
    storage_root: Path = Path("var/storage")
    # Workers' per-attempt scratch space (None: <var_dir>/scratch); cleanup
    # only ever removes marked directories of finished attempts under it.
    scratch_dir: Path | None = None
    # Uploaded media refused at probe time, before any decode: pixels in one
    # frame (Pillow's MAX_IMAGE_PIXELS is the ceiling) and frames of an image.
    max_image_pixels: int = 50_000_000
    max_image_frames: int = 1000
    # Each render's ffmpeg: wall time (s) and address space (MiB); 0 = none.
    ffmpeg_timeout_s: float = 3 * 3600.0
    ffmpeg_memory_limit_mb: int = 8192
    # Estimated peak memory one render may need (pipeline.stages.render_budget);
    # a job past it is refused at submission and before rendering. 0 = none.
    render_memory_budget_mb: float = 2048.0
    s3_bucket: str = "t2m"
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    # Serve S3 downloads by redirecting to a presigned URL instead of
    # streaming the bytes through the API process.
    s3_presign_downloads: bool = False

    worker_heartbeat_s: float = 5.0

    # Webhook targets in these networks pass the SSRF guard (which otherwise
    # refuses loopback, private, link-local, multicast, reserved addresses).
    webhook_allowed_cidrs: tuple[str, ...] = ()
    # A delivery is retried (exponential backoff with jitter from the base
    # delay, capped at an hour) for this long, then marked failed and kept.
    webhook_max_retry_hours: float = 24.0
    webhook_retry_base_s: float = 30.0
    webhook_timeout_s: float = 10.0
    webhook_connect_timeout_s: float = 3.0
    # Attempts in flight at once per subscription: a slow receiver holds at
    # most this many worker threads, whatever its backlog.
    webhook_max_in_flight: int = 4

    # Requests per caller per window (the spec's hourly limits); anonymous
    # root-path callers get each limit divided by the guest divisor.
    rate_limit_enabled: bool = True
    rate_limit_window_s: int = 3600
    rate_limit_general: int = 1000
    rate_limit_uploads: int = 100
    rate_limit_video: int = 10
    rate_limit_system: int = 500
    rate_limit_guest_divisor: int = 10

    # Maintenance defaults (each task also takes them as parameters).
    tmp_max_age_hours: float = 24.0
    log_max_age_days: float = 30.0
    # A processing job untouched this long with no worker on its queue, or a
    # queued job this old, has lost its message.
    stuck_processing_after_s: float = 1800.0
    stuck_queued_after_s: float = 900.0
    stuck_max_requeues: int = 3
    purge_grace_hours: float = 72.0
    # Stored segments (segments/) no live job lists are deleted past this age;
    # a render reuses only segments younger than half of it.
    segment_retention_hours: float = 168.0
    # Guest users (ALLOW_ANONYMOUS) unused this long are reaped with their files.
    guest_max_age_days: float = 30.0
    log_level: str = "INFO"
    log_json: bool = False
    # Bearer token a Prometheus scraper sends to GET /metrics/prometheus
    # (empty: admin tokens only).
    metrics_token: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_dev(self) -> bool:
        return self.env in ("dev", "test")

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        get = env.get

        def read(parse: Callable[[str, str], T], name: str, default: str) -> T:
            """``parse`` the variable ``name`` (``default`` when unset); errors name it."""
            return parse(get(name, default), name)

        mode = get("T2M_ENV", "dev")
        var_dir = Path(get("T2M_VAR_DIR", "var"))
        settings = cls(
            env=mode,
            var_dir=var_dir,
            host=get("HOST", "127.0.0.1"),
            port=read(_int, "PORT", "8000"),
            public_base_url=get("PUBLIC_BASE_URL", "").rstrip("/")
            or f"http://{get('HOST', '127.0.0.1')}:{get('PORT', '8000')}",
            database_url=get("DATABASE_URL", ""),
            db_pool_min=read(_int, "DB_POOL_MIN", "1"),
            db_pool_max=read(_int, "DB_POOL_MAX", "10"),
            redis_url=get("REDIS_URL", ""),
            broker_url=get("BROKER_URL", ""),
            redis_namespace=get("REDIS_NAMESPACE", "t2m"),
            broker_maintenance_chance=read(_int, "BROKER_MAINTENANCE_CHANCE", "10000"),
            broker_heartbeat_timeout_ms=read(_int, "BROKER_HEARTBEAT_TIMEOUT_MS", "60000"),
            jwt_secret=get("JWT_SECRET", ""),
            signing_secret=get("SIGNING_SECRET", ""),
            access_token_ttl_s=read(_int, "ACCESS_TOKEN_TTL", "900"),
            refresh_token_ttl_s=read(_int, "REFRESH_TOKEN_TTL", str(14 * 24 * 3600)),
            oidc_jwks_url=get("OIDC_JWKS_URL", ""),
            oidc_issuer=get("OIDC_ISSUER", ""),
            oidc_audience=get("OIDC_AUDIENCE", ""),
            login_max_failures=read(_int, "LOGIN_MAX_FAILURES", "5"),
            login_failure_window_s=read(_int, "LOGIN_FAILURE_WINDOW", "900"),
            login_max_delay_s=read(_float, "LOGIN_MAX_DELAY", "8"),
            allow_anonymous=read(_bool, "ALLOW_ANONYMOUS", "false"),
            admin_username=get("ADMIN_USERNAME", "admin"),
            admin_email=get("ADMIN_EMAIL", "admin@localhost"),
            max_request_body=read(_int, "MAX_REQUEST_BODY", str(1024 * 1024)),
            max_upload_bytes=read(_int, "MAX_UPLOAD_BYTES", str(2 * 1024**3)),
            upload_max_fields=read(_int, "UPLOAD_MAX_FIELDS", "32"),
            upload_max_fields_bytes=read(_int, "UPLOAD_MAX_FIELDS_BYTES", str(64 * 1024)),
            registration=_choice(get("REGISTRATION", "open"), "REGISTRATION", REGISTRATION_MODES),
            quota_stored_bytes=read(_count, "QUOTA_STORED_BYTES", str(10 * 1024**3)),
            quota_files=read(_count, "QUOTA_FILES", "10000"),
            quota_render_seconds_per_day=read(_count, "QUOTA_RENDER_SECONDS_PER_DAY", "3600"),
            quota_concurrent_jobs=read(_count, "QUOTA_CONCURRENT_JOBS", "3"),
            storage_backend=get("STORAGE_BACKEND", "local"),
            storage_root=Path(get("STORAGE_ROOT", str(var_dir / "storage"))),
            scratch_dir=Path(get("SCRATCH_DIR", "")) if get("SCRATCH_DIR") else None,
            max_image_pixels=read(_int, "MAX_IMAGE_PIXELS", "50000000"),
            max_image_frames=read(_int, "MAX_IMAGE_FRAMES", "1000"),
            ffmpeg_timeout_s=read(_float, "FFMPEG_TIMEOUT_S", "10800"),
            render_memory_budget_mb=read(_float, "RENDER_MEMORY_BUDGET_MB", "2048"),
            ffmpeg_memory_limit_mb=read(_int, "FFMPEG_MEMORY_LIMIT_MB", "8192"),
            s3_bucket=get("S3_BUCKET", "t2m"),
            s3_endpoint_url=get("S3_ENDPOINT_URL", ""),
            s3_region=get("S3_REGION", "us-east-1"),
            s3_access_key_id=get("S3_ACCESS_KEY_ID", get("AWS_ACCESS_KEY_ID", "")),
            s3_secret_access_key=get("S3_SECRET_ACCESS_KEY", get("AWS_SECRET_ACCESS_KEY", "")),
            s3_presign_downloads=read(_bool, "S3_PRESIGN_DOWNLOADS", "false"),
            worker_heartbeat_s=read(_float, "WORKER_HEARTBEAT", "5"),
            webhook_allowed_cidrs=_cidrs(get("WEBHOOK_ALLOWED_CIDRS", "")),
            webhook_max_retry_hours=read(_float, "WEBHOOK_MAX_RETRY_HOURS", "24"),
            webhook_retry_base_s=read(_float, "WEBHOOK_RETRY_BASE_S", "30"),
            webhook_timeout_s=read(_float, "WEBHOOK_TIMEOUT_S", "10"),
            webhook_connect_timeout_s=read(_float, "WEBHOOK_CONNECT_TIMEOUT_S", "3"),
            webhook_max_in_flight=read(_int, "WEBHOOK_MAX_IN_FLIGHT", "4"),
            metrics_token=get("METRICS_TOKEN", ""),
            rate_limit_enabled=read(_bool, "RATE_LIMIT_ENABLED", "true"),
            rate_limit_window_s=read(_int, "RATE_LIMIT_WINDOW_S", "3600"),
            rate_limit_general=read(_int, "RATE_LIMIT_GENERAL", "1000"),
            rate_limit_uploads=read(_int, "RATE_LIMIT_UPLOADS", "100"),
            rate_limit_video=read(_int, "RATE_LIMIT_VIDEO", "10"),
            rate_limit_system=read(_int, "RATE_LIMIT_SYSTEM", "500"),
            rate_limit_guest_divisor=read(_int, "RATE_LIMIT_GUEST_DIVISOR", "10"),
            tmp_max_age_hours=read(_float, "TMP_MAX_AGE_HOURS", "24"),
            log_max_age_days=read(_float, "LOG_MAX_AGE_DAYS", "30"),
            stuck_processing_after_s=read(_float, "STUCK_PROCESSING_AFTER_S", "1800"),
            stuck_queued_after_s=read(_float, "STUCK_QUEUED_AFTER_S", "900"),
            stuck_max_requeues=read(_int, "STUCK_MAX_REQUEUES", "3"),
            purge_grace_hours=read(_float, "PURGE_GRACE_HOURS", "72"),
            segment_retention_hours=read(_float, "SEGMENT_RETENTION_HOURS", "168"),
            guest_max_age_days=read(_float, "GUEST_MAX_AGE_DAYS", "30"),
            log_level=get("LOG_LEVEL", "INFO").upper(),
            log_json=read(_bool, "LOG_JSON", "false" if mode != "production" else "true"),
        )
        return settings.with_secrets()

    def with_secrets(self) -> Settings:
        """Fill missing secrets (generated and persisted in dev, an error in
        production), then refuse any secret too short to resist guessing."""
        settings = self
        if not (self.jwt_secret and self.signing_secret):
            if not self.is_dev:
                names = [
                    n.upper() for n in ("jwt_secret", "signing_secret") if not getattr(self, n)
                ]
                raise ConfigError(f"{', '.join(names)} must be set when T2M_ENV={self.env}")
            settings = replace(
                self,
                jwt_secret=self.jwt_secret or _dev_secret(self.var_dir, "jwt_secret"),
                signing_secret=self.signing_secret or _dev_secret(self.var_dir, "signing_secret"),
            )
        settings.check_secret_lengths()
        settings.check_oidc()
        return settings

    def check_oidc(self) -> None:
        """An external provider is configured whole or not at all: issuer, JWKS
        URL and audience.  Half a configuration used to turn the provider off
        silently (no issuer) or accept tokens minted for any application of
        the provider's tenant (no audience)."""
        values = {
            "OIDC_ISSUER": self.oidc_issuer,
            "OIDC_JWKS_URL": self.oidc_jwks_url,
            "OIDC_AUDIENCE": self.oidc_audience,
        }
        missing = [name for name, value in values.items() if not value]
        if missing and len(missing) < len(values):
            raise ConfigError(
                f"{', '.join(missing)} must be set: OIDC_ISSUER, OIDC_JWKS_URL and"
                " OIDC_AUDIENCE go together (set all three, or none)"
            )

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_jwks_url and self.oidc_audience)

    def check_secret_lengths(self) -> None:
        """HMAC keys (tokens, signed links) and the metrics bearer token carry
        at least 256 bits: a shorter key can be brute-forced offline from one
        signed value.  Checked at start, in every mode, so a weak key never
        serves a request."""
        short = [
            name.upper()
            for name in ("jwt_secret", "signing_secret", "metrics_token")
            # metrics_token is optional: empty means "admin tokens only".
            if (value := getattr(self, name)) and len(value.encode("utf-8")) < MIN_SECRET_BYTES
        ]
        if short:
            raise ConfigError(
                f"{', '.join(short)} must be at least {MIN_SECRET_BYTES} bytes "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )


def _dev_secret(var_dir: Path, name: str) -> str:
    """Read or create a persisted dev secret (file mode 600)."""
    path = var_dir / "secrets" / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value
