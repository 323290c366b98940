"""AUTHSVC_SMTP_URL, AUTHSVC_MAIL_FROM, AUTHSVC_PUBLIC_URL, AUTHSVC_MAIL_RETRY_SECONDS and
AUTHSVC_MAIL_TEMPLATES_DIR: defaults that let `make run` work, and one-line refusals naming the variable."""

from __future__ import annotations

import pytest

from authsvc.settings import Settings

SMTP = {
    "AUTHSVC_SMTP_URL": "smtp+starttls://ada:s3cret@mail.example.com",
    "AUTHSVC_MAIL_FROM": "Authsvc <no-reply@example.com>",
    "AUTHSVC_PUBLIC_URL": "https://auth.example.com/",
}


def test_without_any_variable_mail_goes_to_files_from_localhost_with_links_to_the_local_sidecar():
    settings = Settings.from_env({}).mail
    assert settings.smtp is None
    assert settings.from_address == "authsvc@localhost"
    assert settings.links_base == "http://127.0.0.1:8080"
    assert settings.retry_seconds == 30
    assert settings.templates_dir is None


def test_a_full_smtp_configuration_is_read_and_described_without_its_password(tmp_path):
    settings = Settings.from_env(
        {**SMTP, "AUTHSVC_MAIL_RETRY_SECONDS": "5", "AUTHSVC_MAIL_TEMPLATES_DIR": str(tmp_path)}
    ).mail
    assert settings.smtp is not None
    assert settings.smtp.security == "starttls"
    assert settings.from_address == "Authsvc <no-reply@example.com>"
    assert settings.links_base == "https://auth.example.com"
    assert settings.retry_seconds == 5
    assert settings.templates_dir == tmp_path
    described = settings.describe()
    assert described["smtp_url"] == "smtp+starttls://ada:***@mail.example.com:587"
    assert "s3cret" not in str(described)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"AUTHSVC_SMTP_URL": "smtp://mail.example.com"},
            "AUTHSVC_MAIL_FROM must be set when AUTHSVC_SMTP_URL is",
        ),
        (
            {**SMTP, "AUTHSVC_PUBLIC_URL": ""},
            "AUTHSVC_PUBLIC_URL must be set when AUTHSVC_SMTP_URL is",
        ),
        (
            {**SMTP, "AUTHSVC_SMTP_URL": "smtp://ada:s3cret@mail.example.com"},
            "AUTHSVC_SMTP_URL is not valid: smtp://",
        ),
        ({"AUTHSVC_MAIL_FROM": "no-reply"}, "AUTHSVC_MAIL_FROM must be an address"),
        ({"AUTHSVC_PUBLIC_URL": "auth.example.com"}, "AUTHSVC_PUBLIC_URL must be an http(s) URL"),
        ({"AUTHSVC_MAIL_RETRY_SECONDS": "0"}, "AUTHSVC_MAIL_RETRY_SECONDS must be positive"),
        ({"AUTHSVC_MAIL_RETRY_SECONDS": "nan"}, "AUTHSVC_MAIL_RETRY_SECONDS must be positive"),
        ({"AUTHSVC_MAIL_RETRY_SECONDS": "soon"}, "AUTHSVC_MAIL_RETRY_SECONDS='soon' is not valid"),
        (
            {"AUTHSVC_MAIL_TEMPLATES_DIR": "/nonexistent/templates"},
            "AUTHSVC_MAIL_TEMPLATES_DIR is not a directory",
        ),
    ],
)
def test_an_unusable_value_is_refused_in_one_line_naming_its_variable(environ, message):
    with pytest.raises(ValueError) as raised:
        Settings.from_env(environ)
    text = str(raised.value)
    assert text.startswith(message)
    assert "\n" not in text
    assert "s3cret" not in text
