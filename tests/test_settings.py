"""Settings: the AUTHSVC_* variables, their defaults, and masking in the start-up log."""

from __future__ import annotations

from pathlib import Path

import pytest

from authsvc.settings import Settings, SettingsError


def test_defaults_match_the_contract():
    settings = Settings.from_env({})
    assert settings.grpc_listen == "127.0.0.1:50051"
    assert settings.database_url == "sqlite+aiosqlite:///data/authsvc.db"
    assert settings.signing_keys_dir == Path("data/keys")
    assert (settings.bcrypt_rounds, settings.access_ttl_seconds, settings.refresh_ttl_seconds) == (
        12,
        900,
        2592000,
    )
    assert (settings.refresh_grace_seconds, settings.issuer, settings.audience) == (10, "authsvc", "authsvc")
    # Only the gateway (its secret in the data dir) is believed about client addresses, not loopback.
    assert settings.trusted_proxies == ()
    assert settings.gateway_secret_file == Path("data/gateway.secret")
    assert settings.gateway_tls_names == ()


def test_variables_override_defaults():
    settings = Settings.from_env(
        {
            "AUTHSVC_DATA_DIR": "/srv/auth",
            "AUTHSVC_BCRYPT_ROUNDS": "10",
            "AUTHSVC_REFRESH_GRACE_SECONDS": "0",
            "AUTHSVC_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1",
        }
    )
    assert settings.database_url == "sqlite+aiosqlite:////srv/auth/authsvc.db"
    assert (settings.bcrypt_rounds, settings.refresh_grace_seconds) == (10, 0)
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "192.168.1.1/32"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AUTHSVC_BCRYPT_ROUNDS", "three"),
        ("AUTHSVC_BCRYPT_ROUNDS", "2"),
        ("AUTHSVC_ACCESS_TTL_SECONDS", "0"),
        ("AUTHSVC_REFRESH_GRACE_SECONDS", "-1"),
        ("AUTHSVC_TRUSTED_PROXIES", "not-a-network"),
        ("AUTHSVC_MIGRATE_ON_START", "maybe"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(variable, value):
    with pytest.raises(SettingsError, match="AUTHSVC_"):
        Settings.from_env({variable: value})


def test_the_start_up_description_masks_the_database_password():
    settings = Settings.from_env({"AUTHSVC_DATABASE_URL": "postgresql+asyncpg://auth:s3cret@db:5432/auth"})
    described = settings.describe()
    assert described["database_url"] == "postgresql+asyncpg://auth:***@db:5432/auth"
    assert "s3cret" not in repr(described)
