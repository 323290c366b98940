"""The gRPC service config every client of authsvc uses: which RPCs are retried, and how calls are spread.

The contract marks the RPCs that are safe to send again with `(authsvc.v1.retry_safe)` (options.proto);
`service_config` reads the marks from the descriptors and builds the channel's service config (gRFC A6):

- a retry policy for the marked RPCs only: UNAVAILABLE (the replica was down, refused the stream, went
  away, or answered that its store was unreachable and nothing was committed) and CANCELLED (what a
  replica that stops answers for a call it had not started running: see `RETRYABLE_CODES`), with jittered
  exponential backoff, within the call's own deadline;
- no policy for the others (Login, Register, anything that sends mail or sets a password): they keep only
  gRPC's transparent retries, of requests that never left the client;
- round robin over every address the target resolves to (`ipv4:A,B`, `dns:///name:port`), with client-side
  health checking (gRFC A17): a replica whose health service says NOT_SERVING (one that is stopping, or
  whose store is unreachable) gets no new calls while another one serves;
- a retry throttle that stops retrying while most recent calls fail, so an outage does not become a storm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor

from authsvc_proto.v1 import auth_pb2, options_pb2

__all__ = ["NO_RETRIES", "RETRYABLE_CODES", "RetryPolicy", "retry_safe_methods", "service_config"]

AUTH_SERVICE: ServiceDescriptor = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]

# UNAVAILABLE: the call took no effect (no connection, a refused stream, STORE_UNAVAILABLE). CANCELLED:
# a stopping replica cancels the streams it accepted but never handed to a handler (grpc.aio's server
# shutdown): they never ran. A running call is cancelled only past the shutdown grace, and may have
# committed; the retry-safe RPCs may be sent again either way, to another replica.
RETRYABLE_CODES: tuple[str, ...] = ("UNAVAILABLE", "CANCELLED")


@dataclass(frozen=True)
class RetryPolicy:
    """How a channel retries the retry-safe RPCs; `max_attempts` counts the first try (gRPC caps it at 5).

    The attempts share the call's deadline: a retry never extends it.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    backoff_multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.initial_backoff <= 0 or self.max_backoff < self.initial_backoff:
            raise ValueError("max_attempts >= 1 and 0 < initial_backoff <= max_backoff are required")

    def as_json(self) -> dict[str, Any]:
        """The gRFC A6 `retryPolicy` object."""
        return {
            "maxAttempts": self.max_attempts,
            "initialBackoff": f"{self.initial_backoff}s",
            "maxBackoff": f"{self.max_backoff}s",
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": list(RETRYABLE_CODES),
        }


NO_RETRIES = RetryPolicy(max_attempts=1)


def retry_safe_methods(service: ServiceDescriptor = AUTH_SERVICE) -> tuple[str, ...]:
    """The names of the service's RPCs marked `(authsvc.v1.retry_safe) = true`, in declaration order."""
    return tuple(
        method.name for method in service.methods if method.GetOptions().Extensions[options_pb2.retry_safe]
    )


def service_config(
    retry: RetryPolicy | None = None,
    *,
    service: ServiceDescriptor = AUTH_SERVICE,
    health_check: bool = True,
) -> str:
    """The JSON service config for a channel to `service`: the retry policy on its retry-safe RPCs (none
    when `retry` allows one attempt), round robin over every resolved address, and client-side health
    checking of the whole server (health service name "") unless `health_check` is False."""
    retry = retry or RetryPolicy()
    methods: list[dict[str, Any]] = []
    if retry.max_attempts > 1:  # gRPC refuses a retryPolicy with maxAttempts under 2
        names = [{"service": service.full_name, "method": name} for name in retry_safe_methods(service)]
        methods.append({"name": names, "retryPolicy": retry.as_json()})
    config: dict[str, Any] = {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": methods,
        # gRFC A6 throttling: each failed attempt takes a token, each success gives back a tenth, and
        # retries stop below half the tokens. The maximum (1000): a replica killed with hundreds of calls
        # in flight must not use up the budget those calls' retries need; a full outage still stops
        # retrying after about 500 failed attempts.
        "retryThrottling": {"maxTokens": 1000, "tokenRatio": 0.1},
    }
    if health_check:
        # A server without the health service (UNIMPLEMENTED) is taken as healthy (gRFC A17).
        config["healthCheckConfig"] = {"serviceName": ""}
    return json.dumps(config)
