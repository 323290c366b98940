"""Channel construction shared by both clients: TLS or plaintext, and retries through the service config.

Retries are gRPC's own (gRFC A6), configured by the `grpc.service_config` channel option: only
UNAVAILABLE is retried, with jittered exponential backoff, and a retry throttle stops a retry storm when
most calls fail. UNAVAILABLE means the call did not take effect (no connection, or the service's store
was unreachable and nothing was committed), so every RPC is safe to retry on it; a Refresh whose answer
was lost after it took effect is covered by the service's grace window for the parent token.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

SERVICE_NAME = "authsvc.v1.AuthService"


@dataclass(frozen=True)
class RetryPolicy:
    """How the channel retries UNAVAILABLE calls; `max_attempts` counts the first try (gRPC caps it at 5)."""

    max_attempts: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    backoff_multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.initial_backoff <= 0 or self.max_backoff < self.initial_backoff:
            raise ValueError("max_attempts >= 1 and 0 < initial_backoff <= max_backoff are required")

    def service_config(self) -> str:
        """The JSON service config (gRFC A6) for the AuthService methods; no retry policy for one attempt."""
        method: dict[str, Any] = {"name": [{"service": SERVICE_NAME}]}
        if self.max_attempts > 1:  # gRPC refuses a retryPolicy with maxAttempts under 2
            method["retryPolicy"] = {
                "maxAttempts": self.max_attempts,
                "initialBackoff": f"{self.initial_backoff}s",
                "maxBackoff": f"{self.max_backoff}s",
                "backoffMultiplier": self.backoff_multiplier,
                "retryableStatusCodes": ["UNAVAILABLE"],
            }
        config: dict[str, Any] = {
            "methodConfig": [method],
            # Stop retrying while more than half the recent calls fail (gRFC A6 retry throttling).
            "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
        }
        return json.dumps(config)


NO_RETRIES = RetryPolicy(max_attempts=1)


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
    """Options for either kind of channel: the retry config, a short reconnect backoff, and `extra`."""
    options: list[tuple[str, Any]] = [
        # On even with NO_RETRIES: transparent retries (the request never left the client) stay safe.
        ("grpc.enable_retries", 1),
        ("grpc.service_config", retry.service_config()),
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
