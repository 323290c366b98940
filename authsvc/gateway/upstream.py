"""The gateway's one shared grpc.aio channel to the server, and the calls made over it.

Calls never wait for the channel to be ready (`wait_for_ready=False`): with the server down they fail at
once with UNAVAILABLE, and the short reconnect backoff lets the channel find the server again within about
a second of its return, without restarting the gateway.

The channel takes the contract's service config (authsvc_proto/retry.py): round robin over every address
of AUTHSVC_GRPC_TARGET (`ipv4:127.0.0.1:50051,127.0.0.1:50052`, `dns:///authsvc:50051`), skipping a
replica whose health says NOT_SERVING, and the RPCs marked retry-safe are sent again, to another replica,
on UNAVAILABLE or a stopping replica's CANCELLED, within the gateway's deadline. Login and Register are
never retried once sent.

Every RPC carries the gateway secret (`x-authsvc-gateway`, authsvc/gateway_secret.py): the proof that makes
the server believe the client address and user agent the gateway forwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
from authsvc_proto.retry import RetryPolicy, service_config
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2

from authsvc import gateway_secret
from authsvc.gateway.errors import error_from_rpc
from authsvc.gateway.routes import Route
from authsvc.gateway.settings import GatewaySettings, SettingsError

HEALTH_CHECK_METHOD = "/grpc.health.v1.Health/Check"
# Metadata the server sends with an answer that HTTP caches may keep (the JWKS): the gateway passes it on.
CACHE_CONTROL = "cache-control"
# Health probes (load balancers, orchestrators) wait a few seconds at most: answer within that.
HEALTH_DEADLINE_SECONDS = 2.0

CHANNEL_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # The gateway is a long-lived client: keep idle connections up and notice dead ones.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
)
# Retries of the retry-safe RPCs: spaced like the reconnects above, all within the deadline.
RETRY_POLICY = RetryPolicy(max_attempts=5, initial_backoff=0.1, max_backoff=1.0)

Metadata = Sequence[tuple[str, str]]


class Upstream:
    """Owns the channel and one multi-callable per route; `close()` must be awaited at shutdown."""

    def __init__(
        self,
        target: str,
        routes: Sequence[Route],
        deadline_seconds: float,
        credentials: grpc.ChannelCredentials | None = None,
        server_name: str = "",
        *,
        secret: str | None = None,
    ) -> None:
        self._proof: Metadata = ((gateway_secret.METADATA_KEY, secret),) if secret else ()
        options: list[tuple[str, int | str]] = [
            *CHANNEL_OPTIONS,
            ("grpc.enable_retries", 1),
            ("grpc.service_config", service_config(RETRY_POLICY)),
        ]
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(target, options=options)
        else:
            if server_name:
                options.append(("grpc.ssl_target_name_override", server_name))
            self._channel = grpc.aio.secure_channel(target, credentials, options=options)
        self._deadline = deadline_seconds
        self._callables: Mapping[str, grpc.aio.UnaryUnaryMultiCallable[Message, Message]] = {
            route.grpc_method: self._channel.unary_unary(
                route.grpc_method,
                request_serializer=route.request_class.SerializeToString,
                response_deserializer=route.response_class.FromString,
            )
            for route in routes
        }
        self._health_check = self._channel.unary_unary(
            HEALTH_CHECK_METHOD,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )

    async def call(self, route: Route, request: Message, metadata: Metadata) -> tuple[Message, str | None]:
        """Make the route's RPC within the deadline; return the answer and the `cache-control` the server
        chose for it (GET routes only; None elsewhere or when it chose none). Raise GatewayError for any
        non-OK status."""
        method = self._callables[route.grpc_method]
        try:
            call = method(
                request, timeout=self._deadline, metadata=(*metadata, *self._proof), wait_for_ready=False
            )
            response: Message = await call
            cache_control = None
            if route.http_method == "GET":
                sent = await call.initial_metadata()
                found = [value for key, value in sent or () if key == CACHE_CONTROL]
                cache_control = str(found[0]) if found else None
        except grpc.aio.AioRpcError as exc:
            raise error_from_rpc(exc) from exc
        return response, cache_control

    async def is_serving(self, metadata: Metadata = ()) -> bool:
        """True when the server's overall health (service "") is SERVING; False on any failure."""
        try:
            response: health_pb2.HealthCheckResponse = await self._health_check(
                health_pb2.HealthCheckRequest(service=""),
                timeout=min(self._deadline, HEALTH_DEADLINE_SECONDS),
                metadata=tuple(metadata),
                wait_for_ready=False,
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        await self._channel.close(grace=None)


def channel_credentials(settings: GatewaySettings) -> grpc.ChannelCredentials:
    """TLS credentials from the configured PEM files. Raise SettingsError naming an unreadable file.

    Read once at start-up: the gateway's long-lived channel keeps the files it started with.
    """
    assert settings.grpc_tls_ca_file is not None
    root = _read(settings.grpc_tls_ca_file, "AUTHSVC_GRPC_TLS_CA_FILE")
    key = _read(settings.grpc_tls_key_file, "AUTHSVC_GRPC_TLS_KEY_FILE")
    chain = _read(settings.grpc_tls_cert_file, "AUTHSVC_GRPC_TLS_CERT_FILE")
    return grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)


def read_gateway_secret(settings: GatewaySettings) -> str | None:
    """The secret to show the server, read (or created, as the server does) at start-up; None when no
    AUTHSVC_GATEWAY_SECRET_FILE is set. Raise SettingsError naming the file."""
    if settings.gateway_secret_file is None:
        return None
    try:
        return gateway_secret.load_or_create(settings.gateway_secret_file)
    except gateway_secret.GatewaySecretError as exc:
        raise SettingsError(f"AUTHSVC_GATEWAY_SECRET_FILE: {exc}") from exc


def _read(path: Path | None, variable: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"{variable}={path} cannot be read: {exc.strerror}") from exc
