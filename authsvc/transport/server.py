"""Build, bind and run the grpc.aio server: AuthService, health and reflection over one store.

Building and binding are apart from waiting, so tests bind port 0 and learn the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import grpc
from authsvc_proto.v1 import auth_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from authsvc import gateway_secret
from authsvc.clock import Clock, system_clock
from authsvc.domain.introspection_guard import IntrospectionGuard, IntrospectionPolicy
from authsvc.domain.keys import (
    KeyStoreError,
    LiveKeyRing,
    check_keys,
    load_or_create_keys,
    load_refresh_secret,
)
from authsvc.domain.passwords import PasswordHasher
from authsvc.domain.service import AuthService, TokenPolicy
from authsvc.domain.sessions import SessionService
from authsvc.domain.throttling import LoginPolicy, LoginThrottle, RegisterPolicy, RegisterThrottle
from authsvc.domain.tokens import TokenCodec
from authsvc.settings import Settings, is_loopback
from authsvc.store import Store, StoreError
from authsvc.store.migrate import is_migrated, migrate
from authsvc.store.sql import SqlStore, open_store
from authsvc.store.throttle import AttemptStore, SqlAttemptStore
from authsvc.store.throttle_redis import RedisAttemptStore
from authsvc.transport.decoding import add_servicer
from authsvc.transport.gateway_trust import GatewayTrust
from authsvc.transport.metrics import ServerMetrics
from authsvc.transport.metrics_http import MetricsListener, start_metrics_listener
from authsvc.transport.observing import ObservingInterceptor
from authsvc.transport.servicer import AuthServicer
from authsvc.transport.tls import CertificateReloader, TlsError, TlsFiles

log = logging.getLogger(__name__)


class HealthServicer(Protocol):
    """What this module uses of grpc.aio's health servicer (grpc-stubs predates it)."""

    async def set(self, service: str, status: int) -> None: ...


def _new_health_servicer() -> HealthServicer:
    servicer: HealthServicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    return servicer


AUTH_SERVICE_DESCRIPTOR = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
AUTH_SERVICE = AUTH_SERVICE_DESCRIPTOR.full_name
# Documented limits: requests are a few hundred bytes; anything near these is hostile.
MAX_MESSAGE_BYTES = 64 * 1024
MAX_METADATA_BYTES = 16 * 1024
MAX_CONCURRENT_RPCS = 2000
HEALTH_INTERVAL_SECONDS = 2.0


class StartupError(RuntimeError):
    """The server cannot start: the schema is not migrated, a listen address cannot be bound, or the TLS
    files cannot be used."""


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    host: str
    store: Store
    hasher: PasswordHasher
    health: HealthServicer
    attempts: AttemptStore | None = None
    _monitor: asyncio.Task[None] | None = field(default=None, repr=False)
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    tls: CertificateReloader | None = None
    metrics_listener: MetricsListener | None = None
    keys: LiveKeyRing | None = None
    _key_reloader: asyncio.Task[None] | None = field(default=None, repr=False)

    def reload_tls(self) -> None:
        """Re-read the TLS files for the next handshakes (what SIGHUP does); connections open stay up.
        Raise TlsError, keeping the old certificate, when the new files are unusable; no-op without TLS."""
        if self.tls is not None:
            self.tls.reload()

    async def reload_keys(self) -> None:
        """Re-read the keys directory now (what the reload loop does every AUTHSVC_KEYS_RELOAD_SECONDS).
        Raise KeyStoreError, keeping the keys in use, when the directory cannot be read."""
        if self.keys is not None:
            _log_key_changes(*await asyncio.to_thread(self.keys.reload))

    @property
    def bound(self) -> str:
        """The address the server listens on, as bound (`0.0.0.0:50051`, `127.0.0.1:40123`): for logs."""
        return f"{self.host or '[::]'}:{self.port}"

    @property
    def target(self) -> str:
        """An address a local client can connect to (a wildcard host becomes 127.0.0.1)."""
        host = self.host if self.host not in ("", "0.0.0.0", "[::]") else "127.0.0.1"  # noqa: S104
        return f"{host}:{self.port}"

    async def wait(self) -> None:
        await self.server.wait_for_termination()

    async def stop(self, grace: float | None = 5.0) -> None:
        """Stop accepting, let in-flight RPCs finish within `grace` seconds, then close the store."""
        await _set_health(self.health, health_pb2.HealthCheckResponse.NOT_SERVING)
        for task in (self._monitor, self._key_reloader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.server.stop(grace)
        if self.metrics_listener is not None:
            await self.metrics_listener.stop()
        await self.store.close()
        if self.attempts is not None:
            await self.attempts.close()
        self.hasher.close()


def _open_attempt_store(settings: Settings, store: SqlStore) -> AttemptStore:
    """Login and register attempt counters: in Redis when AUTHSVC_REDIS_URL is set, else in the service's
    database."""
    if settings.redis_url:
        return RedisAttemptStore.from_url(
            settings.redis_url, settings.redis_key_prefix, settings.db_timeout_seconds
        )
    return SqlAttemptStore(store.runner)


def _login_throttle(settings: Settings, attempts: AttemptStore, clock: Clock) -> LoginThrottle:
    policy = LoginPolicy(
        window=timedelta(seconds=settings.login_window_seconds),
        max_failures_per_pair=settings.login_max_failures_per_account,
        max_failures_per_address=settings.login_max_failures_per_address,
        account_window=timedelta(seconds=settings.login_across_addresses_window_seconds),
        max_failures_per_account=settings.login_max_failures_across_addresses,
        known_address_lifetime=timedelta(seconds=settings.login_known_address_seconds),
    )
    return LoginThrottle(attempts, policy, clock)


def _register_throttle(settings: Settings, attempts: AttemptStore, clock: Clock) -> RegisterThrottle:
    policy = RegisterPolicy(
        window=timedelta(seconds=settings.register_window_seconds),
        max_per_address=settings.register_max_per_address,
        max_per_window=settings.register_max_per_window,
    )
    return RegisterThrottle(attempts, policy, clock)


def _introspection_guard(settings: Settings, attempts: AttemptStore, clock: Clock) -> IntrospectionGuard:
    if not settings.introspection_secret and not is_loopback(settings.grpc_listen):
        log.warning(
            "no AUTHSVC_INTROSPECTION_SECRET: Introspect answers loopback callers only",
            extra={"grpc_listen": settings.grpc_listen},
        )
    policy = IntrospectionPolicy(
        window=timedelta(seconds=settings.introspection_window_seconds),
        max_failures_per_address=settings.introspection_max_failures_per_address,
    )
    return IntrospectionGuard(settings.introspection_secret or None, attempts, policy, clock)


async def _set_health(servicer: HealthServicer, status: int) -> None:
    for name in ("", AUTH_SERVICE):
        await servicer.set(name, status)


async def _check_health(
    store: Store,
    attempts: AttemptStore,
    *,
    keys_dir: Path,
    metrics: ServerMetrics,
    servicer: HealthServicer,
    serving: bool | None,
) -> bool:
    """Ping the store and the throttling counters (Redis, when they live there: logins fail without them),
    and read the signing keys once; publish the health status when it changed.

    Return whether all are usable.
    """
    healthy = True
    try:
        await store.ping()
        await attempts.ping()
    except StoreError:
        healthy = False
        metrics.database_errors.labels("health_check").inc()
    try:
        if await asyncio.to_thread(check_keys, keys_dir) == 0:
            raise KeyStoreError(f"keys directory {keys_dir} holds no signing key")
    except KeyStoreError as exc:
        if serving is not False:
            log.warning("signing keys unreadable: %s", exc)
        healthy = False
    if healthy != serving:
        status = (
            health_pb2.HealthCheckResponse.SERVING if healthy else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await _set_health(servicer, status)
        log.log(
            logging.INFO if healthy else logging.WARNING,
            "%s",
            "store and keys usable"
            if healthy
            else "store, throttling counters or keys unusable: NOT_SERVING",
        )
    return healthy


async def _watch_health(
    store: Store,
    attempts: AttemptStore,
    *,
    keys_dir: Path,
    metrics: ServerMetrics,
    servicer: HealthServicer,
    serving: bool,
) -> None:
    """Keep the health status in step with the store, the throttling counters and the signing keys."""
    while True:
        await asyncio.sleep(HEALTH_INTERVAL_SECONDS)
        serving = await _check_health(
            store, attempts, keys_dir=keys_dir, metrics=metrics, servicer=servicer, serving=serving
        )


def _log_key_changes(added: frozenset[str], removed: frozenset[str]) -> None:
    if added or removed:
        log.info("signing keys reloaded", extra={"added": sorted(added), "removed": sorted(removed)})


async def _reload_keys_forever(running: RunningServer, interval: float) -> None:
    """Follow the keys directory: added keys are published, pruned and revoked ones dropped."""
    while True:
        await asyncio.sleep(interval)
        try:
            await running.reload_keys()
        except KeyStoreError as exc:
            log.warning("signing keys not reloaded, keeping the previous set: %s", exc)


async def start_server(settings: Settings, clock: Clock = system_clock) -> RunningServer:
    """Migrate (unless told not to), open the store and keys, bind and start serving."""
    if settings.migrate_on_start:
        await migrate(settings.database_url, connect_timeout_seconds=settings.db_timeout_seconds)
    elif not await is_migrated(settings.database_url, connect_timeout_seconds=settings.db_timeout_seconds):
        raise StartupError("the database schema is not at the newest revision: run `authsvc migrate`")
    activation_delay = timedelta(seconds=settings.key_activation_delay_seconds)
    keys_dir = settings.signing_keys_dir
    keys = LiveKeyRing(keys_dir, load_or_create_keys(keys_dir, clock(), activation_delay), activation_delay)
    refresh_secret = load_refresh_secret(keys_dir)
    gateway = _gateway_trust(settings)
    store = await open_store(
        settings.database_url, pool_size=settings.db_pool_size, timeout_seconds=settings.db_timeout_seconds
    )
    hasher = PasswordHasher(settings.bcrypt_rounds, settings.hash_threads)
    attempts = _open_attempt_store(settings, store)
    metrics = ServerMetrics()
    metrics.watch_bcrypt_queue(lambda: hasher.queue_depth)
    metrics_listener: MetricsListener | None = None
    try:
        await hasher.warm_up()
        policy = TokenPolicy(
            access_ttl=timedelta(seconds=settings.access_ttl_seconds),
            refresh_ttl=timedelta(seconds=settings.refresh_ttl_seconds),
            refresh_grace=timedelta(seconds=settings.refresh_grace_seconds),
        )
        tokens = TokenCodec(keys, refresh_secret, settings.issuer, settings.audience, settings.client_id)
        service = AuthService(
            store,
            hasher,
            tokens,
            policy,
            clock,
            throttle=_login_throttle(settings, attempts, clock),
            register_throttle=_register_throttle(settings, attempts, clock),
        )
        sessions = SessionService(store, tokens, clock, _introspection_guard(settings, attempts, clock))
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_metadata_size", MAX_METADATA_BYTES),
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
            interceptors=[ObservingInterceptor(metrics)],
        )
        add_servicer(
            AuthServicer(service, sessions, settings.trusted_proxies, settings.jwks_max_age_seconds, gateway),
            AUTH_SERVICE_DESCRIPTOR,
            server,
        )
        health_servicer = _new_health_servicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (
                AUTH_SERVICE,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        port, reloader = _bind(server, settings)
        await _set_health(health_servicer, health_pb2.HealthCheckResponse.NOT_SERVING)
        await server.start()
        if settings.metrics_listen:
            try:
                metrics_listener = await start_metrics_listener(settings.metrics_listen, metrics)
            except OSError as exc:
                await server.stop(None)
                raise StartupError(f"cannot listen for metrics on {settings.metrics_listen}") from exc
    except BaseException:
        await store.close()
        await attempts.close()
        hasher.close()
        raise
    running = RunningServer(
        server,
        port,
        settings.grpc_listen.rpartition(":")[0],
        store,
        hasher,
        health_servicer,
        attempts,
        metrics=metrics,
        tls=reloader,
        metrics_listener=metrics_listener,
        keys=keys,
    )
    # The first check runs before start_server returns, so a started server already reports its health.
    serving = await _check_health(
        store, attempts, keys_dir=keys_dir, metrics=metrics, servicer=health_servicer, serving=None
    )
    running._monitor = asyncio.create_task(
        _watch_health(
            store, attempts, keys_dir=keys_dir, metrics=metrics, servicer=health_servicer, serving=serving
        )
    )
    running._key_reloader = asyncio.create_task(_reload_keys_forever(running, settings.keys_reload_seconds))
    return running


def _gateway_trust(settings: Settings) -> GatewayTrust:
    """How the REST gateway is known: the secret file (created when missing, so that `make run` needs no
    step) and, under mutual TLS, AUTHSVC_GATEWAY_TLS_NAMES."""
    try:
        secret = gateway_secret.load_or_create(settings.gateway_secret_path)
    except gateway_secret.GatewaySecretError as exc:
        raise StartupError(f"AUTHSVC_GATEWAY_SECRET_FILE: {exc}") from exc
    return GatewayTrust(secret, settings.gateway_tls_names)


def _bind(server: grpc.aio.Server, settings: Settings) -> tuple[int, CertificateReloader | None]:
    """Add the gRPC port: TLS (mutual with a client CA) when configured, else plain text."""
    listen = settings.grpc_listen
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
        raise StartupError(str(exc)) from exc
    except RuntimeError as exc:
        raise StartupError(f"cannot listen on {listen}") from exc
    if port == 0:
        raise StartupError(f"cannot listen on {listen}")
    if reloader is not None:
        log.info(
            "TLS on",
            extra={"grpc_listen": listen, "subject": reloader.subject, "mutual_tls": reloader.mutual},
        )
    return port, reloader
