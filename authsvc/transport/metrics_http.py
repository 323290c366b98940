"""The server's metrics listener: GET /metrics on AUTHSVC_METRICS_LISTEN, apart from the gRPC port.

It runs on the server's event loop (aiohttp), so it needs no thread and stops with the server.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from authsvc.transport.metrics import CONTENT_TYPE_LATEST

METRICS_PATH = "/metrics"


class Exposition(Protocol):
    """What the listener serves: a server's own metrics, or the sum of its workers' (transport/metrics.py)."""

    def render(self) -> bytes: ...


@dataclass(frozen=True)
class MetricsListener:
    runner: web.AppRunner
    port: int

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_metrics_listener(listen: str, metrics: Exposition) -> MetricsListener:
    """Bind `HOST:PORT` (port 0 picks one) and serve the metrics. Raise OSError when it cannot bind."""
    host, _, port_text = listen.rpartition(":")

    async def handle(request: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get(METRICS_PATH, handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host.strip("[]") or None, int(port_text))
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    server = site._server  # aiohttp exposes the bound port only through its asyncio server
    port = int(port_text)
    if isinstance(server, asyncio.base_events.Server) and server.sockets:
        port = int(server.sockets[0].getsockname()[1])
    return MetricsListener(runner, port)
