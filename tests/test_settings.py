"""Settings: the AUTHSVC_* variables, their defaults, and masking in the start-up log."""

from __future__ import annotations

import re
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


def test_mail_and_account_token_defaults_let_make_run_work_without_a_mail_server():
    settings = Settings.from_env({})
    assert settings.mail.smtp is None  # .eml files in the data dir
    assert settings.mail.links_base == "http://127.0.0.1:8080"
    assert (settings.reset_token_ttl_seconds, settings.verify_token_ttl_seconds) == (1800, 86400)
    assert (settings.forgot_max_per_email, settings.forgot_max_per_address) == (5, 20)


def test_the_start_up_description_masks_the_smtp_password():
    settings = Settings.from_env(
        {
            "AUTHSVC_SMTP_URL": "smtp+starttls://ada:s3cret@mail.example.com",
            "AUTHSVC_MAIL_FROM": "Authsvc <no-reply@example.com>",
            "AUTHSVC_PUBLIC_URL": "https://auth.example.com",
            "AUTHSVC_RESET_TOKEN_TTL_SECONDS": "600",
        }
    )
    described = settings.describe()
    assert described["smtp_url"] == "smtp+starttls://ada:***@mail.example.com:587"
    assert described["reset_token_ttl_seconds"] == "600"
    assert "s3cret" not in str(described)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"AUTHSVC_SMTP_URL": "smtp://mail.example.com"}, "AUTHSVC_MAIL_FROM must be set"),
        ({"AUTHSVC_PUBLIC_URL": "auth.example.com"}, "AUTHSVC_PUBLIC_URL must be an http(s) URL"),
        ({"AUTHSVC_RESET_TOKEN_TTL_SECONDS": "0"}, "AUTHSVC_RESET_TOKEN_TTL_SECONDS must be positive"),
        ({"AUTHSVC_FORGOT_MAX_PER_EMAIL": "-1"}, "AUTHSVC_FORGOT_MAX_PER_EMAIL must be positive"),
    ],
)
def test_unusable_mail_settings_stop_the_start_naming_the_variable(environ, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env(environ)
