"""The `authsvc-gateway` command: the REST sidecar, configured by AUTHSVC_* variables only.

It lives beside `authsvc.gateway`, not in it: the gateway package never imports `authsvc.logs`
(docs/architecture.md, "Import layers"), while the command shares the server's JSON log lines.
A setting the gateway cannot use, and a listen address it cannot bind, stop it at start with one line on
stderr and exit status 2; SIGINT or SIGTERM stop it cleanly (status 0).

`--workers N` (or AUTHSVC_GATEWAY_WORKERS; `auto`: one per CPU) runs N processes on the one HTTP port
(authsvc/supervisor.py): the parent restarts one that dies and, on SIGTERM, stops them all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from prometheus_client import multiprocess

from authsvc.gateway import GatewaySettings, serve
from authsvc.gateway.metrics import MULTIPROCESS_DIRECTORY
from authsvc.gateway.serving import start_gateway
from authsvc.gateway.settings import SettingsError, parse_workers
from authsvc.logs import configure_logging
from authsvc.supervisor import WORKER_FLAG, PortError, Supervisor, WorkerLink, reserve_port, tag_logs_with_pid

PROG = "authsvc-gateway"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")  # as the server accepts them
STOP_SECONDS = 30.0  # a stopping worker's in-flight requests: at most the deadline of their gRPC calls
log = logging.getLogger("authsvc.gateway")


def log_level(environ: Mapping[str, str]) -> str:
    """AUTHSVC_LOG_LEVEL, upper-cased (INFO when unset or empty); SettingsError when not a level."""
    value = (environ.get("AUTHSVC_LOG_LEVEL") or "").strip().upper() or "INFO"
    if value not in LOG_LEVELS:
        raise SettingsError(f"AUTHSVC_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    return value


def _options(args: list[str]) -> tuple[str | None, int | None]:
    """`--workers N` and the parent's own `--worker-of FD`; SettingsError for anything else."""
    workers: str | None = None
    worker_of: int | None = None
    rest = list(args)
    while rest:
        option = rest.pop(0)
        name, equals, value = option.partition("=")
        if name not in ("--workers", WORKER_FLAG) or (not equals and not rest):
            raise SettingsError(
                "takes only --workers N (settings come from AUTHSVC_* variables), got " + repr(option)
            )
        value = value if equals else rest.pop(0)
        if name == "--workers":
            workers = value
        elif value.isdigit():
            worker_of = int(value)
        else:
            raise SettingsError(f"{WORKER_FLAG} takes a file descriptor, got {value!r}")
    return workers, worker_of


async def _serve_worker(settings: GatewaySettings, link: WorkerLink) -> None:
    """One of the parent's workers: serve until SIGTERM, SIGINT, or the parent is gone."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    gateway = await start_gateway(settings)
    log.info("REST gateway worker on %s -> gRPC %s", gateway.url, settings.grpc_target)
    link.on_parent_gone(stop.set)
    link.ready()
    try:
        await stop.wait()
    finally:
        await gateway.stop()


async def _serve_workers(settings: GatewaySettings) -> int:
    try:
        port, reserved = reserve_port(settings.http_host, settings.http_port)
    except PortError as exc:
        raise SettingsError(f"AUTHSVC_HTTP_LISTEN: {exc}") from exc
    host = f"[{settings.http_host}]" if ":" in settings.http_host else settings.http_host
    log.info("REST gateway: %d workers on %s:%d", settings.workers, host, port)
    # The workers' metrics, summed by whichever of them answers GET /metrics (authsvc/gateway/metrics.py).
    folder = Path(tempfile.mkdtemp(prefix="authsvc-gateway-metrics-"))
    environment = {
        **os.environ,
        "AUTHSVC_HTTP_LISTEN": f"{host}:{port}",
        "AUTHSVC_GATEWAY_WORKERS": str(settings.workers),
        MULTIPROCESS_DIRECTORY: str(folder),
    }
    try:
        supervisor = Supervisor(
            command=(sys.executable, "-m", "authsvc.gateway_cli"),
            count=settings.workers,
            environment=environment,
            stop_seconds=settings.deadline_seconds + STOP_SECONDS,
            on_exit=lambda pid: multiprocess.mark_process_dead(pid, str(folder)),  # type: ignore[no-untyped-call]
        )
        return await supervisor.run(forward_sighup=False)
    finally:
        for sock in reserved:
            sock.close()
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args in (["-h"], ["--help"]):
        print(f"usage: {PROG} [--workers N]\n\n{__doc__}")
        return 0
    try:
        workers, worker_of = _options(args)
        configure_logging(log_level(os.environ))
        settings = GatewaySettings.from_env(os.environ)
        if workers is not None:
            settings = dataclasses.replace(settings, workers=parse_workers(workers, "--workers"))
        if worker_of is not None:
            tag_logs_with_pid()
            asyncio.run(_serve_worker(settings, WorkerLink(worker_of)))
            return 0
        logging.getLogger("authsvc.gateway").info("settings: %s", settings.describe())
        if settings.workers > 1:
            return asyncio.run(_serve_workers(settings))
        asyncio.run(serve(settings))
    except SettingsError as exc:  # also a TLS file that cannot be read, or a port that cannot be bound
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers are in place: nothing to clean up
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
