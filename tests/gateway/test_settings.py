"""GatewaySettings.from_env: the gateway's AUTHSVC_* variables and their defaults (docs/configuration.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from authsvc.gateway import GatewaySettings
from authsvc.gateway.settings import SettingsError


def test_defaults_match_the_spec() -> None:
    settings = GatewaySettings.from_env({})
    assert settings == GatewaySettings(
        http_host="127.0.0.1",
        http_port=8080,
        grpc_target="127.0.0.1:50051",
        deadline_seconds=10.0,
        http_trusted_proxies=(),
        gateway_secret_file=Path("data/gateway.secret"),  # the server's default: `make run` shares it
    )


def test_every_variable_is_read() -> None:
    settings = GatewaySettings.from_env(
        {
            "AUTHSVC_HTTP_LISTEN": "[::1]:9090",
            "AUTHSVC_GRPC_TARGET": "auth.internal:6000",
            "AUTHSVC_GATEWAY_DEADLINE_SECONDS": "2.5",
        }
    )
    assert (settings.http_host, settings.http_port) == ("::1", 9090)
    assert settings.grpc_target == "auth.internal:6000"
    assert settings.deadline_seconds == 2.5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AUTHSVC_HTTP_LISTEN", "8080"),
        ("AUTHSVC_HTTP_LISTEN", "host:port"),
        ("AUTHSVC_HTTP_LISTEN", "host:70000"),
        ("AUTHSVC_GATEWAY_DEADLINE_SECONDS", "soon"),
        ("AUTHSVC_GATEWAY_DEADLINE_SECONDS", "0"),
        ("AUTHSVC_GATEWAY_DEADLINE_SECONDS", "nan"),
    ],
)
def test_unusable_values_are_refused_at_start_up(name: str, value: str) -> None:
    with pytest.raises(SettingsError):
        GatewaySettings.from_env({name: value})


def test_the_settings_are_frozen() -> None:
    settings = GatewaySettings.from_env({})
    with pytest.raises(AttributeError):
        settings.http_port = 1  # type: ignore[misc]
