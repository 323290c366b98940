"""Channel construction shared by both clients: TLS or plaintext, load balancing, health checks and
retries, all through the contract's service config (`authsvc_proto.retry`, gRFC A6).

- Round robin over every address the target names (`ipv4:10.0.0.1:50051,10.0.0.2:50051`,
  `dns:///authsvc:50051`), skipping a replica whose health service says NOT_SERVING (gRFC A17).
- The RPCs the contract marks `(authsvc.v1.retry_safe)` (Refresh, Logout, LogoutAll, ListSessions, ...)
  are retried on UNAVAILABLE (the call took no effect) and on a stopping replica's CANCELLED, with
  jittered exponential backoff, within the call's deadline; a Refresh whose answer was lost is covered
  by the service's grace window. Login, Register and the RPCs that send mail or set a password are
  never sent twice: they keep only gRPC's transparent retries, of requests that never left the client.
- A retry throttle stops retrying while most recent calls fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from authsvc_proto.retry import NO_RETRIES, RetryPolicy, service_config

__all__ = ["NO_RETRIES", "ChannelSpec", "RetryPolicy", "Tls", "channel_options"]


@dataclass(frozen=True)
class Tls:
    """TLS settings. With no `root_certificates`, the system's trust roots verify the server; a client
    certificate (PEM chain and key) is sent only when both are given (mutual TLS)."""

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    # Verify the server's certificate for this name instead of the target's host (e.g. an IP target).
    server_hostname: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


def channel_options(
    retry: RetryPolicy, tls: Tls | None, extra: Sequence[tuple[str, Any]] = ()
) -> list[tuple[str, Any]]:
    """Options for either kind of channel: the service config, a short reconnect backoff, and `extra`."""
    options: list[tuple[str, Any]] = [
        # On even with NO_RETRIES: transparent retries (the request never left the client) stay safe.
        ("grpc.enable_retries", 1),
        ("grpc.service_config", service_config(retry)),
        # The default first reconnect wait is 1 s: longer than the retry budget, so retries would only
        # ever meet a channel still in backoff. Reconnect as fast as retries are spaced. Not
        # grpc.min_reconnect_backoff_ms: that is also the connect timeout, and must stay long (20 s).
        ("grpc.initial_reconnect_backoff_ms", max(1, int(retry.initial_backoff * 1000))),
        ("grpc.max_reconnect_backoff_ms", max(1, int(retry.max_backoff * 1000))),
    ]
    if tls is not None and tls.server_hostname:
        options.append(("grpc.ssl_target_name_override", tls.server_hostname))
    options.extend(extra)
    return options


@dataclass(frozen=True)
class ChannelSpec:
    """Where and how a client connects; opens either kind of channel with the same options."""

    target: str
    retry: RetryPolicy
    tls: Tls | None
    extra: Sequence[tuple[str, Any]] = ()

    def blocking(self) -> grpc.Channel:
        options = channel_options(self.retry, self.tls, self.extra)
        if self.tls is None:
            return grpc.insecure_channel(self.target, options=options)
        return grpc.secure_channel(self.target, self.tls.credentials(), options=options)

    def aio(self, interceptors: Sequence[Any]) -> grpc.aio.Channel:
        options = channel_options(self.retry, self.tls, self.extra)
        if self.tls is None:
            return grpc.aio.insecure_channel(self.target, options=options, interceptors=interceptors)
        credentials = self.tls.credentials()
        return grpc.aio.secure_channel(self.target, credentials, options=options, interceptors=interceptors)
