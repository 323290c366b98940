"""The gateway's settings: one frozen object built from the environment at start-up."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from authsvc import gateway_secret, supervisor

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_HTTP_LISTEN = "127.0.0.1:8080"
DEFAULT_GRPC_TARGET = "127.0.0.1:50051"
DEFAULT_DEADLINE_SECONDS = 10.0


class SettingsError(ValueError):
    """An environment variable holds a value the gateway cannot use."""


@dataclass(frozen=True)
class GatewaySettings:
    """Where the gateway listens, which gRPC server it calls, and how long one call may take."""

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Any gRPC target: one HOST:PORT, every replica as `ipv4:HOST:PORT,HOST:PORT`, or `dns:///NAME:PORT`
    # (calls go round robin to the healthy ones: authsvc_proto/retry.py).
    grpc_target: str = DEFAULT_GRPC_TARGET
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    # TLS to the gRPC server: the CA that signed its certificate; a client pair for mutual TLS.
    grpc_tls_ca_file: Path | None = None
    grpc_tls_cert_file: Path | None = None
    grpc_tls_key_file: Path | None = None
    # The name to check the server certificate against, when it differs from the target's host.
    grpc_tls_server_name: str = ""
    # Route the RPCs marked `(authsvc.v1.internal)` too (Introspect): only on a sidecar that internal
    # services alone can reach.
    expose_internal: bool = False
    # For /.well-known/openid-configuration: the server's AUTHSVC_ISSUER (both processes read it), and
    # the URL clients reach this gateway at (empty: each request's own origin).
    issuer: str = "authsvc"
    public_url: str = ""
    # The client address sent to the server (x-forwarded-for, one address) is the HTTP peer's, unless the
    # peer is in these networks (a load balancer, an ingress): then the nearest X-Forwarded-For entry
    # outside them. Empty: X-Forwarded-For is never read.
    http_trusted_proxies: tuple[Network, ...] = ()
    # The secret shown to the server so that it believes that address (authsvc/gateway_secret.py); created
    # when missing. None: none is sent (the server then records this gateway's own address, unless it
    # knows the gateway by its client certificate).
    gateway_secret_file: Path | None = None
    # Processes serving the one HTTP port (authsvc-gateway --workers N, authsvc/gateway_cli.py).
    workers: int = 1

    def __post_init__(self) -> None:
        if self.workers <= 0:
            raise SettingsError("AUTHSVC_GATEWAY_WORKERS (--workers) must be a positive number or auto")
        if (self.grpc_tls_cert_file is None) != (self.grpc_tls_key_file is None):
            raise SettingsError(
                "AUTHSVC_GRPC_TLS_CERT_FILE and AUTHSVC_GRPC_TLS_KEY_FILE must be set together"
            )
        if self.grpc_tls_cert_file is not None and self.grpc_tls_ca_file is None:
            raise SettingsError("a client certificate (mutual TLS) needs AUTHSVC_GRPC_TLS_CA_FILE")
        if self.public_url and not self.public_url.startswith(("https://", "http://")):
            raise SettingsError(f"AUTHSVC_PUBLIC_URL must be an http(s) URL, got {self.public_url!r}")

    @property
    def grpc_tls(self) -> bool:
        return self.grpc_tls_ca_file is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GatewaySettings:
        """Read the gateway's AUTHSVC_* variables (docs/configuration.md), among them
        AUTHSVC_HTTP_TRUSTED_PROXIES and AUTHSVC_GATEWAY_SECRET_FILE (default: gateway.secret in
        AUTHSVC_DATA_DIR, as the server reads it).

        Raises SettingsError when a value is present but unusable; absent or empty values take the defaults.
        """
        host, port = _parse_listen(environ.get("AUTHSVC_HTTP_LISTEN") or DEFAULT_HTTP_LISTEN)
        target = (environ.get("AUTHSVC_GRPC_TARGET") or DEFAULT_GRPC_TARGET).strip()
        deadline = _parse_deadline(environ.get("AUTHSVC_GATEWAY_DEADLINE_SECONDS"))
        return cls(
            http_host=host,
            http_port=port,
            grpc_target=target,
            deadline_seconds=deadline,
            grpc_tls_ca_file=_path(environ.get("AUTHSVC_GRPC_TLS_CA_FILE")),
            grpc_tls_cert_file=_path(environ.get("AUTHSVC_GRPC_TLS_CERT_FILE")),
            grpc_tls_key_file=_path(environ.get("AUTHSVC_GRPC_TLS_KEY_FILE")),
            grpc_tls_server_name=(environ.get("AUTHSVC_GRPC_TLS_SERVER_NAME") or "").strip(),
            expose_internal=_parse_flag(
                environ.get("AUTHSVC_GATEWAY_EXPOSE_INTERNAL"), "AUTHSVC_GATEWAY_EXPOSE_INTERNAL"
            ),
            issuer=(environ.get("AUTHSVC_ISSUER") or "authsvc").strip(),
            public_url=(environ.get("AUTHSVC_PUBLIC_URL") or "").strip(),
            http_trusted_proxies=_parse_networks(environ.get("AUTHSVC_HTTP_TRUSTED_PROXIES")),
            gateway_secret_file=_path(environ.get("AUTHSVC_GATEWAY_SECRET_FILE"))
            # The server's default: both processes of `make run` find the same file with no setup.
            or (_path(environ.get("AUTHSVC_DATA_DIR")) or Path("data")) / gateway_secret.FILE_NAME,
            workers=parse_workers(environ.get("AUTHSVC_GATEWAY_WORKERS") or "1", "AUTHSVC_GATEWAY_WORKERS"),
        )

    def describe(self) -> str:
        """One line for the start-up log: no secret is in the settings (the gateway secret's file is named,
        never read here), so nothing is masked."""
        return (
            f"AUTHSVC_HTTP_LISTEN={self.http_host}:{self.http_port} "
            f"AUTHSVC_GRPC_TARGET={self.grpc_target} "
            f"AUTHSVC_GATEWAY_DEADLINE_SECONDS={self.deadline_seconds:g} "
            f"grpc_tls={'mutual' if self.grpc_tls_cert_file else 'on' if self.grpc_tls else 'off'} "
            f"AUTHSVC_HTTP_TRUSTED_PROXIES={','.join(str(n) for n in self.http_trusted_proxies)} "
            f"AUTHSVC_GATEWAY_SECRET_FILE={self.gateway_secret_file or ''}"
        )


def _parse_listen(value: str) -> tuple[str, int]:
    host, sep, port_text = value.strip().rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise SettingsError(f"AUTHSVC_HTTP_LISTEN must be HOST:PORT, got {value!r}")
    # "[::1]:8080" names an IPv6 host; aiohttp wants it without the brackets.
    return host.strip("[]") or "0.0.0.0", int(port_text)  # noqa: S104 (":8080" means every interface)


def parse_workers(value: str, name: str) -> int:
    """A number of workers, or `auto`: the CPUs this process may run on. SettingsError otherwise."""
    try:
        workers = supervisor.parse_workers(value)
    except ValueError:
        workers = 0
    if workers <= 0:
        raise SettingsError(f"{name} must be a positive number or auto, got {value!r}")
    return workers


def _path(value: str | None) -> Path | None:
    return Path(value.strip()) if value and value.strip() else None


def _parse_networks(value: str | None) -> tuple[Network, ...]:
    try:
        parts = [part.strip() for part in (value or "").split(",")]
        return tuple(ipaddress.ip_network(part, strict=False) for part in parts if part)
    except ValueError as exc:
        raise SettingsError(f"AUTHSVC_HTTP_TRUSTED_PROXIES={value!r} is not valid: {exc}") from exc


def _parse_deadline(value: str | None) -> float:
    if value is None or not value.strip():
        return DEFAULT_DEADLINE_SECONDS
    try:
        seconds = float(value)
    except ValueError as exc:
        raise SettingsError(f"AUTHSVC_GATEWAY_DEADLINE_SECONDS must be a number, got {value!r}") from exc
    if not math.isfinite(seconds) or seconds <= 0:
        raise SettingsError(f"AUTHSVC_GATEWAY_DEADLINE_SECONDS must be positive, got {value!r}")
    return seconds


def _parse_flag(value: str | None, variable: str) -> bool:
    text = (value or "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{variable}={value!r} is not valid: expected true or false")
