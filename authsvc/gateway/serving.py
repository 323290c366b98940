"""Run the gateway: bind (apart from waiting, so tests can bind port 0), then serve until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass

from aiohttp import web

from authsvc.gateway.app import build_app
from authsvc.gateway.protocol import MAX_HEAD_LINE_BYTES, GatewayRunner
from authsvc.gateway.settings import GatewaySettings, SettingsError

log = logging.getLogger("authsvc.gateway")


@dataclass(frozen=True)
class RunningGateway:
    """A started gateway: `url` is its base address; `stop()` closes the listener and the gRPC channel."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_gateway(settings: GatewaySettings) -> RunningGateway:
    """Build the app and bind it; with port 0 the system picks a free port, reported in the result.
    Raise SettingsError when the address cannot be bound."""
    # GatewayRunner: malformed HTTP, which aiohttp rejects before the application, still gets the API's
    # error shape and headers and one INFO log line (authsvc/gateway/protocol.py).
    runner = GatewayRunner(
        build_app(settings),
        access_log=None,
        handle_signals=False,
        max_line_size=MAX_HEAD_LINE_BYTES,
        max_field_size=MAX_HEAD_LINE_BYTES,
    )
    await runner.setup()
    # With workers (authsvc-gateway --workers N) each binds the same port; the kernel spreads connections.
    reuse_port = settings.workers > 1 or None
    site = web.TCPSite(runner, settings.http_host, settings.http_port, reuse_port=reuse_port)
    try:
        await site.start()
    except OSError as exc:  # a port in use or below 1024, an unknown host: one line, naming the variable
        await runner.cleanup()
        host = f"[{settings.http_host}]" if ":" in settings.http_host else settings.http_host
        address = f"{host}:{settings.http_port}"
        # asyncio words EADDRINUSE at length, naming the address again; a resolver error has no errno > 0.
        reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or str(exc)
        raise SettingsError(f"AUTHSVC_HTTP_LISTEN={address} cannot be bound: {reason}") from exc
    except BaseException:
        await runner.cleanup()
        raise
    port = settings.http_port
    server = site._server  # aiohttp exposes the bound port only through its asyncio server
    if isinstance(server, asyncio.base_events.Server) and server.sockets:
        port = int(server.sockets[0].getsockname()[1])
    return RunningGateway(runner=runner, host=settings.http_host, port=port)


async def serve(settings: GatewaySettings) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly (listener first, then the channel)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # platforms without add_signal_handler
            loop.add_signal_handler(signum, stop.set)
    gateway = await start_gateway(settings)
    log.info("REST gateway on %s -> gRPC %s", gateway.url, settings.grpc_target)
    try:
        await stop.wait()
    finally:
        log.info("REST gateway stopping")
        await gateway.stop()
        log.info("REST gateway stopped")
