"""The sidecar's Prometheus metrics at GET /metrics: HTTP requests by route and status, and latency.

Each application has its own registry, so several gateways in one process (tests) never collide. With
`--workers N` the parent sets PROMETHEUS_MULTIPROC_DIR for its workers: each writes its counts there
(prometheus_client's multiprocess mode) and whichever worker answers GET /metrics reports them all, summed.
Routes are labelled by their template (`/api/v1/sessions/{session_id}`), never the concrete path, so a label
never holds an id and the series stay few.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

METRICS_PATH = "/metrics"
MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
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
        # Label sets are few (routes x methods x statuses, see the module), so this stays small.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

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
                counter, histogram = self._series(_route_label(request), request.method, status)
                counter.inc()
                histogram.observe(time.perf_counter() - started)

        return count

    def _series(self, route: str, method: str, status: int) -> tuple[Counter, Histogram]:
        """The request counter and latency histogram of one label set, looked up once: `labels()`
        takes a lock and builds a key on every call, a cost each request would otherwise pay twice."""
        key = (route, method, status)
        series = self._children.get(key)
        if series is None:
            series = (self.requests.labels(route, method, str(status)), self.latency.labels(route, method))
            self._children[key] = series
        return series

    async def handle(self, request: web.Request) -> web.StreamResponse:
        registry = self.registry
        if os.environ.get(MULTIPROCESS_DIRECTORY):  # one of several workers: report every worker's counts
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        response = web.Response(body=generate_latest(registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


def _route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE
