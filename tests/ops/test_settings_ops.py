"""The operations settings: TLS files, plain text off loopback, metrics address, log level."""

from __future__ import annotations

import logging

import pytest

from authsvc.app.start import start_server
from authsvc.settings import Settings, SettingsError, is_loopback
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("127.1.2.3:50051", True),
        ("[::1]:50051", True),
        ("localhost:50051", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        (":50051", False),
        ("10.0.0.5:50051", False),
        ("auth.internal:50051", False),
    ],
)
def test_which_listen_addresses_count_as_loopback(listen, loopback):
    assert is_loopback(listen) is loopback


def test_a_non_loopback_address_without_tls_is_refused_with_the_way_out_named():
    with pytest.raises(SettingsError, match="AUTHSVC_ALLOW_INSECURE=true"):
        Settings.from_env({"AUTHSVC_GRPC_LISTEN": "0.0.0.0:50051"})


def test_tls_or_the_explicit_opt_in_allow_a_non_loopback_address():
    with_tls = Settings.from_env(
        {
            "AUTHSVC_GRPC_LISTEN": "0.0.0.0:50051",
            "AUTHSVC_TLS_CERT_FILE": "s.crt",
            "AUTHSVC_TLS_KEY_FILE": "s.key",
        }
    )
    assert with_tls.tls_enabled
    opted_in = Settings.from_env({"AUTHSVC_GRPC_LISTEN": "0.0.0.0:50051", "AUTHSVC_ALLOW_INSECURE": "true"})
    assert opted_in.allow_insecure and not opted_in.tls_enabled


async def test_serving_plain_text_off_loopback_on_purpose_logs_a_warning(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    running = await start_server(
        make_settings(tmp_path / "data", grpc_listen="0.0.0.0:0", allow_insecure=True)
    )
    await running.stop(1)
    assert any("PLAIN TEXT" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"AUTHSVC_TLS_CERT_FILE": "s.crt"}, "set together"),
        ({"AUTHSVC_TLS_KEY_FILE": "s.key"}, "set together"),
        ({"AUTHSVC_TLS_CLIENT_CA_FILE": "ca.crt"}, "needs AUTHSVC_TLS_CERT_FILE"),
        ({"AUTHSVC_METRICS_LISTEN": "9464"}, "AUTHSVC_METRICS_LISTEN"),
        ({"AUTHSVC_LOG_LEVEL": "loud"}, "AUTHSVC_LOG_LEVEL"),
        ({"AUTHSVC_ALLOW_INSECURE": "perhaps"}, "AUTHSVC_ALLOW_INSECURE"),
    ],
)
def test_unusable_operations_settings_are_refused(variables, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(variables)


def test_the_log_level_and_metrics_address_are_read():
    settings = Settings.from_env({"AUTHSVC_LOG_LEVEL": "debug", "AUTHSVC_METRICS_LISTEN": "127.0.0.1:9464"})
    assert (settings.log_level, settings.metrics_listen) == ("DEBUG", "127.0.0.1:9464")
    assert Settings.from_env({}).metrics_listen == ""  # off unless asked for
