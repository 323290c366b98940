"""Build and bind the grpc.aio server over services already built: AuthService, health and reflection.

Opening stores and keys and building the services is the composition root's (authsvc/app/); this module
only knows gRPC. Binding is apart from starting, so tests bind port 0 and learn the port.
"""

from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass
from typing import Protocol

import grpc
from authsvc_proto.v1 import auth_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from authsvc.domain.account import AccountService
from authsvc.domain.admin import AdminService
from authsvc.domain.recovery import RecoveryService
from authsvc.domain.service import AuthService
from authsvc.domain.sessions import SessionService
from authsvc.settings import Settings, is_loopback
from authsvc.transport.decoding import add_servicer
from authsvc.transport.gateway_trust import GatewayTrust
from authsvc.transport.metrics import ServerMetrics
from authsvc.transport.observing import ObservingInterceptor
from authsvc.transport.servicer import AuthServicer
from authsvc.transport.tls import CertificateReloader, TlsError, TlsFiles

log = logging.getLogger(__name__)

AUTH_SERVICE_DESCRIPTOR = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
AUTH_SERVICE = AUTH_SERVICE_DESCRIPTOR.full_name
# Documented limits: requests are a few hundred bytes; anything near these is hostile.
MAX_MESSAGE_BYTES = 64 * 1024
MAX_METADATA_BYTES = 16 * 1024
MAX_CONCURRENT_RPCS = 2000


class ListenError(RuntimeError):
    """The gRPC address cannot be bound, or the TLS files cannot be used."""


class HealthServicer(Protocol):
    """What this module uses of grpc.aio's health servicer (grpc-stubs predates it)."""

    async def set(self, service: str, status: int) -> None: ...


def _new_health_servicer() -> HealthServicer:
    servicer: HealthServicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    return servicer


async def set_serving(servicer: HealthServicer, serving: bool) -> None:
    """Publish SERVING or NOT_SERVING for the whole server and for AuthService."""
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", AUTH_SERVICE):
        await servicer.set(name, status)


@dataclass(frozen=True)
class BoundServer:
    """A grpc.aio server with its port added, not started yet."""

    server: grpc.aio.Server
    port: int
    health: HealthServicer
    tls: CertificateReloader | None


def bind_server(
    auth: AuthService,
    sessions: SessionService,
    settings: Settings,
    *,
    gateway_secret: str | None,
    metrics: ServerMetrics,
    account: AccountService | None = None,
    admin: AdminService | None = None,
    recovery: RecoveryService | None = None,
) -> BoundServer:
    """Build the server (AuthService, health, reflection) and add the port of AUTHSVC_GRPC_LISTEN.

    Raise ListenError when the address cannot be bound or the TLS files cannot be used.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_metadata_size", MAX_METADATA_BYTES),
            # With several workers (authsvc/app/workers.py) every one binds the same port, and the kernel
            # spreads new connections over them; alone, a second server on the port is an error.
            ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
        ],
        maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
        interceptors=[ObservingInterceptor(metrics)],
    )
    gateway = GatewayTrust(gateway_secret, settings.gateway_tls_names)
    add_servicer(
        AuthServicer(
            auth,
            sessions,
            settings.trusted_proxies,
            settings.jwks_max_age_seconds,
            gateway,
            account=account,
            admin=admin,
            recovery=recovery,
        ),
        AUTH_SERVICE_DESCRIPTOR,
        server,
    )
    health_servicer = _new_health_servicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (AUTH_SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port, reloader = _bind(server, settings)
    return BoundServer(server, port, health_servicer, reloader)


def _bind(server: grpc.aio.Server, settings: Settings) -> tuple[int, CertificateReloader | None]:
    """Add the gRPC port: TLS (mutual with a client CA) when configured, else plain text."""
    listen = settings.grpc_listen
    _probe(listen, reuse_port=settings.workers > 1)
    reloader: CertificateReloader | None = None
    try:
        if settings.tls_cert_file is not None and settings.tls_key_file is not None:
            files = TlsFiles(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)
            reloader = CertificateReloader(files)
            port = server.add_secure_port(listen, reloader.credentials())
        else:
            if not is_loopback(listen):
                log.warning(
                    "serving gRPC in PLAIN TEXT on a non-loopback address (AUTHSVC_ALLOW_INSECURE=true): "
                    "tokens and passwords cross the network unencrypted",
                    extra={"grpc_listen": listen},
                )
            port = server.add_insecure_port(listen)
    except TlsError as exc:
        raise ListenError(str(exc)) from exc
    except RuntimeError as exc:
        raise ListenError(f"cannot listen on {listen}") from exc
    if port == 0:
        raise ListenError(f"cannot listen on {listen}")
    if reloader is not None:
        log.info(
            "TLS on",
            extra={"grpc_listen": listen, "subject": reloader.subject, "mutual_tls": reloader.mutual},
        )
    return port, reloader


def _probe(listen: str, *, reuse_port: bool = False) -> None:
    """Bind the address once ourselves, so a busy or forbidden port is one clear line.

    grpcio only answers "port 0", after its C core has printed its own error line on stderr.
    Failures other than "in use" and "not allowed" are left to grpcio, which knows its address syntax.
    A worker binds with SO_REUSEPORT, as its siblings and its parent's reservation of the port did.
    """
    host, _, port_text = listen.rpartition(":")
    if not port_text.isdigit() or int(port_text) == 0:
        return
    try:
        candidates = socket.getaddrinfo(
            host.strip("[]") or None, int(port_text), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError:
        return
    for family, kind, protocol, _name, address in candidates:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpcio binds
            if reuse_port:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    raise ListenError(f"cannot listen on {listen}: {exc.strerror}") from exc
