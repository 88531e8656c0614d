"""Settings come from the environment in one place; dev secrets persist."""

from __future__ import annotations

import stat

import pytest

from t2m.errors import ConfigError
from t2m.settings import Settings


def test_from_env_parses_types(tmp_path):
    settings = Settings.from_env(
        {
            "T2M_VAR_DIR": str(tmp_path),
            "PORT": "9001",
            "ALLOW_ANONYMOUS": "yes",
            "MAX_UPLOAD_BYTES": "1024",
            "DATABASE_URL": "postgresql://db/x",
            "REDIS_URL": "redis://r:6379/0",
        }
    )
    assert settings.port == 9001
    assert settings.allow_anonymous is True
    assert settings.max_upload_bytes == 1024
    assert settings.effective_broker_url == "redis://r:6379/0"
    assert settings.storage_root == tmp_path / "storage"
    with pytest.raises(ConfigError, match="PORT"):
        Settings.from_env({"T2M_VAR_DIR": str(tmp_path), "PORT": "eighty"})
    with pytest.raises(ConfigError, match="ALLOW_ANONYMOUS"):
        Settings.from_env({"T2M_VAR_DIR": str(tmp_path), "ALLOW_ANONYMOUS": "maybe"})


def test_dev_secrets_are_generated_once_and_private(tmp_path):
    first = Settings.from_env({"T2M_VAR_DIR": str(tmp_path)})
    second = Settings.from_env({"T2M_VAR_DIR": str(tmp_path)})
    assert first.jwt_secret and first.jwt_secret == second.jwt_secret
    assert first.signing_secret != first.jwt_secret
    mode = (tmp_path / "secrets" / "jwt_secret").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_production_refuses_missing_secrets(tmp_path):
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        Settings.from_env({"T2M_ENV": "production", "T2M_VAR_DIR": str(tmp_path)})
    settings = Settings.from_env(
        {
            "T2M_ENV": "production",
            "T2M_VAR_DIR": str(tmp_path),
            "JWT_SECRET": "a" * 40,
            "SIGNING_SECRET": "b" * 40,
        }
    )
    assert settings.log_json is True
    assert not (tmp_path / "secrets").exists()


@pytest.mark.parametrize("name", ["JWT_SECRET", "SIGNING_SECRET", "METRICS_TOKEN"])
@pytest.mark.parametrize("mode", ["production", "dev"])
def test_short_secrets_are_refused_at_start(tmp_path, name, mode):
    env = {
        "T2M_ENV": mode,
        "T2M_VAR_DIR": str(tmp_path),
        "JWT_SECRET": "a" * 32,
        "SIGNING_SECRET": "b" * 32,
        "METRICS_TOKEN": "c" * 32,
    }
    Settings.from_env(env)  # 32 bytes are enough
    env[name] = "z" * 31
    with pytest.raises(ConfigError, match=f"{name} must be at least 32 bytes"):
        Settings.from_env(env)


def test_dev_generated_secrets_are_long_enough(tmp_path):
    settings = Settings.from_env({"T2M_ENV": "dev", "T2M_VAR_DIR": str(tmp_path)})
    assert len(settings.jwt_secret.encode()) >= 32
    assert len(settings.signing_secret.encode()) >= 32
