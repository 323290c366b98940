"""`authsvc serve --workers N`: a parent that runs N serving processes on one gRPC port.

A Python server uses one core for its event loop; N workers use N, each with its own event loop, store
connections and bcrypt threads (how they share the port: authsvc/supervisor.py). The parent serves no
RPC: it migrates the schema once (workers never race Alembic), makes the first signing key and the gateway
secret once, holds the port, serves every worker's metrics summed (prometheus_client's multiprocess mode,
in a fresh folder), restarts a worker that dies, forwards SIGHUP (TLS and key reload), and on SIGTERM or
SIGINT lets every worker finish its in-flight calls before it exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from authsvc.app.errors import StartupError
from authsvc.app.resources import load_gateway_secret, load_signing_keys, prepare_schema
from authsvc.clock import Clock, system_clock
from authsvc.settings import Settings
from authsvc.supervisor import PortError, Supervisor, reserve_port
from authsvc.transport.metrics import ServerMetrics, WorkersMetrics
from authsvc.transport.metrics_http import MetricsListener, start_metrics_listener

__all__ = ["run_workers", "store_gauges_forever"]

log = logging.getLogger("authsvc")

# Past the drain and the grace each worker gives its in-flight calls, a worker still running is killed.
STOP_MARGIN_SECONDS = 15.0


async def store_gauges_forever(metrics: ServerMetrics, every_seconds: float = 1.0) -> None:
    """The parent reads a worker's metrics from its files: write the function-backed gauges there."""
    while True:
        metrics.store_watched()
        await asyncio.sleep(every_seconds)


async def run_workers(settings: Settings, clock: Clock = system_clock) -> int:
    """Serve with `settings.workers` processes until SIGTERM or SIGINT; the exit status to return.

    Raise StartupError (or KeyStoreError, StoreError) when the parent's own preparations fail."""
    await prepare_schema(settings)
    load_signing_keys(settings, clock())  # the first key and the refresh secret, made once, not raced
    load_gateway_secret(settings)
    host, _, port_text = settings.grpc_listen.rpartition(":")
    listen, reserved = settings.grpc_listen, list[socket.socket]()
    if port_text.isdigit():  # else not HOST:PORT: left to grpcio, in the workers
        try:
            port, reserved = reserve_port(host, int(port_text))
        except PortError as exc:
            raise StartupError(str(exc)) from exc
        listen = f"{host}:{port}"
    folder = Path(tempfile.mkdtemp(prefix="authsvc-metrics-"))
    metrics = WorkersMetrics(folder)
    listener: MetricsListener | None = None
    try:
        if settings.metrics_listen:
            try:
                listener = await start_metrics_listener(settings.metrics_listen, metrics)
            except OSError as exc:
                raise StartupError(f"cannot listen for metrics on {settings.metrics_listen}") from exc
        log.info(
            "starting workers",
            extra={
                "grpc_listen": listen,
                "workers": settings.workers,
                "metrics_listen": settings.metrics_listen,
            },
        )
        # Each worker reads its settings from the environment as the parent did, with what the parent
        # decided in its place: the port, no migration, no metrics listener of its own.
        environment = {
            **os.environ,
            "AUTHSVC_GRPC_LISTEN": listen,
            "AUTHSVC_WORKERS": str(settings.workers),
            "AUTHSVC_MIGRATE_ON_START": "false",
            "AUTHSVC_METRICS_LISTEN": "",
            "PROMETHEUS_MULTIPROC_DIR": str(folder),
        }
        supervisor = Supervisor(
            command=(sys.executable, "-m", "authsvc.cli", "serve"),
            count=settings.workers,
            environment=environment,
            stop_seconds=settings.drain_seconds + settings.shutdown_grace_seconds + STOP_MARGIN_SECONDS,
            on_exit=metrics.worker_exited,
        )
        return await supervisor.run()
    finally:
        if listener is not None:
            await listener.stop()
        for sock in reserved:
            sock.close()
        shutil.rmtree(folder, ignore_errors=True)
