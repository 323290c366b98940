"""The sidecar's Prometheus metrics at GET /metrics: HTTP requests by route and status, and latency.

Each application has its own registry, so several gateways in one process (tests) never collide. Routes
are labelled by their template (`/api/v1/sessions/{session_id}`), never the concrete path, so a label
never holds an id and the series stay few.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

METRICS_PATH = "/metrics"
UNMATCHED_ROUTE = "unmatched"  # 404s: one series however many paths scanners try
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "authsvc_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "authsvc_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def middleware(self) -> Middleware:
        """Outermost middleware: it sees the final status, error answers included."""

        @web.middleware
        async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                route = _route_label(request)
                self.requests.labels(route, request.method, str(status)).inc()
                self.latency.labels(route, request.method).observe(time.perf_counter() - started)

        return count

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


def _route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE
