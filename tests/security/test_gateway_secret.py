"""The gateway secret file (authsvc/gateway_secret.py): created once, private, shared by whichever process
starts first, and refused when it holds no usable secret."""

from __future__ import annotations

import logging
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from authsvc import gateway_secret
from authsvc.app.start import StartupError, start_server
from authsvc.gateway import GatewaySettings, build_app
from authsvc.gateway.settings import SettingsError
from authsvc.settings import Settings
from authsvc.settings import SettingsError as ServerSettingsError
from tests.conftest import make_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_first_reader_creates_a_private_secret_and_later_ones_read_it(tmp_path):
    path = tmp_path / "data" / gateway_secret.FILE_NAME
    previous = os.umask(0o022)  # what a shell usually gives
    try:
        first = gateway_secret.load_or_create(path)
    finally:
        os.umask(previous)
    assert len(first) >= gateway_secret.MIN_CHARACTERS
    assert (oct(mode(path)), oct(mode(path.parent))) == (oct(0o600), oct(0o700))
    assert gateway_secret.load_or_create(path) == first == gateway_secret.read(path)
    assert [p.name for p in path.parent.iterdir()] == [gateway_secret.FILE_NAME]  # no draft left behind


def _load(path: str) -> str:
    return gateway_secret.load_or_create(Path(path))


@pytest.mark.slow
def test_processes_starting_together_agree_on_one_secret(tmp_path):
    path = tmp_path / "data" / gateway_secret.FILE_NAME
    context = multiprocessing.get_context("spawn")
    with context.Pool(8) as pool:
        found = pool.map(_load, [str(path)] * 32)
    assert set(found) == {gateway_secret.read(path)}


@pytest.mark.parametrize(
    "content",
    [b"", b"short", b"x" * 31, b"spaces are not allowed in a secret of this size", "é".encode() * 40],
)
def test_a_file_without_a_usable_secret_is_refused(tmp_path, content):
    path = tmp_path / gateway_secret.FILE_NAME
    path.write_bytes(content)
    with pytest.raises(gateway_secret.GatewaySecretError, match=str(path)):
        gateway_secret.load_or_create(path)


def test_an_operators_secret_is_used_and_a_readable_one_is_warned_about(tmp_path, caplog):
    path = tmp_path / gateway_secret.FILE_NAME
    path.write_text("an-operator-chosen-secret-of-forty-characters\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="authsvc.gateway_secret"):
        assert gateway_secret.read(path) == "an-operator-chosen-secret-of-forty-characters"
    assert "readable by other users" in caplog.text
    assert "an-operator-chosen" not in caplog.text


def test_the_gateway_fails_to_start_naming_the_variable_when_the_secret_is_unusable(tmp_path):
    path = tmp_path / gateway_secret.FILE_NAME
    path.write_text("short")
    with pytest.raises(SettingsError, match="AUTHSVC_GATEWAY_SECRET_FILE"):
        build_app(GatewaySettings(gateway_secret_file=path))


async def test_the_server_fails_to_start_when_the_secret_is_unusable(tmp_path):
    path = tmp_path / gateway_secret.FILE_NAME
    path.write_text("short")
    with pytest.raises(StartupError, match=r"AUTHSVC_GATEWAY_SECRET_FILE.*gateway secret"):
        await start_server(make_settings(tmp_path / "data", gateway_secret_file=path))


def test_the_server_settings_read_the_secret_file_and_the_certificate_names():
    settings = Settings.from_env(
        {
            "AUTHSVC_DATA_DIR": "/srv/auth",
            "AUTHSVC_TLS_CERT_FILE": "s.crt",
            "AUTHSVC_TLS_KEY_FILE": "s.key",
            "AUTHSVC_TLS_CLIENT_CA_FILE": "ca.crt",
            "AUTHSVC_GATEWAY_TLS_NAMES": "gateway.internal, spiffe://auth/gateway",
        }
    )
    assert settings.gateway_secret_file == Path("/srv/auth/gateway.secret")
    assert settings.gateway_tls_names == ("gateway.internal", "spiffe://auth/gateway")
    described = settings.describe()
    assert described["gateway_secret_file"] == "/srv/auth/gateway.secret"  # a path, shown unmasked
    assert described["gateway_tls_names"] == "gateway.internal,spiffe://auth/gateway"
    named = Settings.from_env({"AUTHSVC_GATEWAY_SECRET_FILE": "/run/secrets/gateway"})
    assert named.gateway_secret_file == Path("/run/secrets/gateway")


def test_certificate_names_without_mutual_tls_are_refused():
    with pytest.raises(ServerSettingsError, match="AUTHSVC_GATEWAY_TLS_NAMES"):
        Settings.from_env({"AUTHSVC_GATEWAY_TLS_NAMES": "gateway.internal"})
