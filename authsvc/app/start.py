"""`start_server`: open what the server runs on, build the services, bind and start gRPC, and watch.

`RunningServer` is what the caller holds: the port, reloads (SIGHUP, the key reload loop) and `stop()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from functools import partial

import grpc

from authsvc.app.errors import StartupError
from authsvc.app.health import check_health, reload_key_ring, reload_keys_forever, watch_health
from authsvc.app.resources import (
    load_gateway_secret,
    load_signing_keys,
    open_attempt_store,
    open_courier,
    open_sql_store,
    prepare_schema,
)
from authsvc.app.services import Services, account_mails, build_services
from authsvc.clock import Clock, system_clock
from authsvc.domain.courier import Courier
from authsvc.domain.keys import LiveKeyRing
from authsvc.domain.passwords import PasswordHasher
from authsvc.settings import Settings
from authsvc.store import Store
from authsvc.store.throttle import AttemptStore
from authsvc.transport.metrics import ServerMetrics
from authsvc.transport.metrics_http import MetricsListener, start_metrics_listener
from authsvc.transport.server import HealthServicer, ListenError, bind_server, set_serving
from authsvc.transport.tls import CertificateReloader

__all__ = ["RunningServer", "StartupError", "start_server"]


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
    services: Services | None = None
    courier: Courier | None = None  # sends the outbox's mail; closed before the store

    def reload_tls(self) -> None:
        """Re-read the TLS files for the next handshakes (what SIGHUP does); connections open stay up.
        Raise TlsError, keeping the old certificate, when the new files are unusable; no-op without TLS."""
        if self.tls is not None:
            self.tls.reload()

    async def reload_keys(self) -> None:
        """Re-read the keys directory now (what the reload loop does every AUTHSVC_KEYS_RELOAD_SECONDS).
        Raise KeyStoreError, keeping the keys in use, when the directory cannot be read."""
        if self.keys is not None:
            await reload_key_ring(self.keys)

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

    async def stop(self, grace: float | None = 5.0, *, drain_seconds: float = 0.0) -> None:
        """Say NOT_SERVING, keep serving `drain_seconds` more, then stop accepting, let in-flight RPCs
        finish within `grace` seconds, and close the store.

        The drain is what makes a rolling restart drop nothing: clients that watch this server's health
        (round robin with health checks, authsvc_proto/retry.py) stop sending it calls while it still
        answers. Calls that reach it after that are cut short by `server.stop`: grpc.aio cancels the calls
        it had received but not yet handed to a handler (the client sees CANCELLED), which is why the
        clients retry CANCELLED for the retry-safe RPCs.
        """
        # The health monitor goes first, so that it cannot publish SERVING again during the drain.
        for task in (self._monitor, self._key_reloader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await set_serving(self.health, False)
        if drain_seconds > 0:
            await asyncio.sleep(drain_seconds)
        await self.server.stop(grace)
        if self.courier is not None:
            # The mail being sent gets the grace too; the rest of its batch goes back to the outbox.
            await self.courier.close(grace_seconds=5.0 if grace is None else grace)
        if self.metrics_listener is not None:
            await self.metrics_listener.stop()
        await self.store.close()
        if self.attempts is not None:
            await self.attempts.close()
        self.hasher.close()


async def start_server(settings: Settings, clock: Clock = system_clock) -> RunningServer:
    """Migrate (unless told not to), open the store and keys, bind and start serving.

    Raise StartupError (or KeyStoreError, StoreError) with what to fix when it cannot.
    """
    await prepare_schema(settings)
    keys = load_signing_keys(settings, clock())
    gateway_secret = load_gateway_secret(settings)
    store = await open_sql_store(settings)
    attempts = open_attempt_store(settings, store)
    services: Services | None = None
    metrics = ServerMetrics()
    metrics_listener: MetricsListener | None = None
    try:
        try:
            mails = account_mails(settings)
        except ValueError as exc:
            raise StartupError(str(exc)) from exc
        courier = open_courier(settings, store, clock, metrics.observe)
        metrics.watch_mail_outbox(lambda: courier.pending)
        services = build_services(settings, store, attempts, keys, clock, mails=mails, mail_queue=courier)
        hasher = services.hasher
        metrics.watch_bcrypt_queue(lambda: hasher.queue_depth)
        await hasher.warm_up()
        try:
            bound = bind_server(
                services.auth,
                services.sessions,
                settings,
                gateway_secret=gateway_secret,
                metrics=metrics,
                account=services.account,
                admin=services.admin,
                recovery=services.recovery,
            )
        except ListenError as exc:
            raise StartupError(str(exc)) from exc
        await set_serving(bound.health, False)
        await bound.server.start()
        if settings.metrics_listen:
            try:
                metrics_listener = await start_metrics_listener(settings.metrics_listen, metrics)
            except OSError as exc:
                await bound.server.stop(None)
                raise StartupError(f"cannot listen for metrics on {settings.metrics_listen}") from exc
    except BaseException:
        await store.close()
        await attempts.close()
        if services is not None:
            services.close()
        raise
    running = RunningServer(
        bound.server,
        bound.port,
        settings.grpc_listen.rpartition(":")[0],
        store,
        hasher,
        bound.health,
        attempts,
        metrics=metrics,
        tls=bound.tls,
        metrics_listener=metrics_listener,
        keys=keys.ring,
        services=services,
        courier=courier,
    )
    courier.start()  # sends what waits in the outbox (queued before a restart, or by other replicas)
    publish = partial(set_serving, bound.health)
    keys_dir = settings.signing_keys_dir
    # The first check runs before start_server returns, so a started server already reports its health.
    serving = await check_health(
        store, attempts, keys_dir=keys_dir, metrics=metrics, publish=publish, serving=None
    )
    running._monitor = asyncio.create_task(
        watch_health(store, attempts, keys_dir=keys_dir, metrics=metrics, publish=publish, serving=serving)
    )
    running._key_reloader = asyncio.create_task(reload_keys_forever(keys.ring, settings.keys_reload_seconds))
    return running
