"""`authsvc check`: "ok" and 0 when `serve` could start; otherwise non-zero and one line saying why."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from authsvc import cli
from authsvc.store.migrate import migrate
from tests.ops.certs import Authority


def run_check(monkeypatch, capsys, data_dir: Path, **variables: str) -> tuple[int, str, str]:
    """`authsvc check` with AUTHSVC_DATA_DIR=data_dir plus `variables`; its code, stdout and stderr."""
    monkeypatch.setattr(cli, "configure_logging", lambda *_args: None)  # keep pytest's handlers
    for name in [name for name in os.environ if name.startswith("AUTHSVC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AUTHSVC_DATA_DIR", str(data_dir))
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = cli.main(["check"])
    captured = capsys.readouterr()
    return code, captured.out.strip(), captured.err.strip()


@pytest.fixture
def migrated(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    asyncio.run(migrate(f"sqlite+aiosqlite:///{data_dir / 'authsvc.db'}"))
    return data_dir


def test_a_migrated_store_with_usable_settings_is_ok(monkeypatch, capsys, migrated):
    assert run_check(monkeypatch, capsys, migrated) == (0, "ok", "")


def test_a_fresh_data_directory_is_ok_since_serve_migrates_and_makes_a_key(monkeypatch, capsys, tmp_path):
    code, out, _ = run_check(monkeypatch, capsys, tmp_path / "fresh")
    assert code == 0 and out.startswith("ok")
    assert not (tmp_path / "fresh").exists()  # the check wrote nothing


def test_a_tls_pair_that_loads_is_ok(monkeypatch, capsys, migrated, tmp_path):
    cert, key = Authority().server().write(tmp_path / "pki", "server")
    code, out, _ = run_check(
        monkeypatch, capsys, migrated, AUTHSVC_TLS_CERT_FILE=str(cert), AUTHSVC_TLS_KEY_FILE=str(key)
    )
    assert (code, out) == (0, "ok")


@pytest.mark.parametrize(
    ("description", "variables", "expected"),
    [
        ("bad config", {"AUTHSVC_BCRYPT_ROUNDS": "2"}, "AUTHSVC_BCRYPT_ROUNDS"),
        ("plain text off loopback", {"AUTHSVC_GRPC_LISTEN": "0.0.0.0:50051"}, "AUTHSVC_ALLOW_INSECURE"),
        (
            "unreachable database",
            {
                "AUTHSVC_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:9/none",
                "AUTHSVC_DB_TIMEOUT_SECONDS": "2",
            },
            "database unreachable",
        ),
        ("unmigrated schema, migration off", {"AUTHSVC_MIGRATE_ON_START": "false"}, "authsvc migrate"),
        (
            "missing certificate",
            {"AUTHSVC_TLS_CERT_FILE": "/nonexistent.crt", "AUTHSVC_TLS_KEY_FILE": "/k"},
            "certificate",
        ),
    ],
)
def test_what_would_stop_serve_exits_non_zero_with_one_line(
    monkeypatch, capsys, tmp_path, description, variables, expected
):
    code, out, err = run_check(monkeypatch, capsys, tmp_path / "data", **variables)
    assert code != 0, description
    assert out == ""
    assert len(err.splitlines()) == 1 and expected in err, err


def test_an_unreadable_signing_key_exits_non_zero(monkeypatch, capsys, migrated):
    (migrated / "keys").mkdir()
    (migrated / "keys" / "20260101T000000000000Z-bad.pem").write_text("not a key")
    code, _, err = run_check(monkeypatch, capsys, migrated)
    assert code != 0 and "cannot read signing key" in err


def test_a_mail_template_that_does_not_render_exits_non_zero_naming_it(
    monkeypatch, capsys, migrated, tmp_path
):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "reset.txt").write_text("Subject: Reset\n\nOpen $link within $lifetme\n")
    code, out, err = run_check(monkeypatch, capsys, migrated, AUTHSVC_MAIL_TEMPLATES_DIR=str(templates))
    assert (code != 0, out) == (True, "")
    assert len(err.splitlines()) == 1 and "mail template reset" in err, err


def test_an_smtp_url_without_a_from_address_exits_non_zero(monkeypatch, capsys, migrated):
    code, _, err = run_check(monkeypatch, capsys, migrated, AUTHSVC_SMTP_URL="smtp://127.0.0.1:2525")
    assert code != 0 and "AUTHSVC_MAIL_FROM must be set when AUTHSVC_SMTP_URL is" in err, err
