"""The aiohttp application: one generic handler per route read from the contract, plus health and docs.

Every answer, success or error, carries X-Request-Id; every error uses the one JSON error shape, including
the router's own 404 and 405, the body-size 413 and the media-type 415 (malformed HTTP, which never reaches
this application, is answered in the same shape by authsvc/gateway/protocol.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from authsvc.gateway import errors
from authsvc.gateway.account import add_account_routes
from authsvc.gateway.discovery import (
    DISCOVERY_CACHE_CONTROL,
    DISCOVERY_PATH,
    base_url_of,
    discovery_document,
)
from authsvc.gateway.errors import GatewayError
from authsvc.gateway.metadata import REQUEST_ID_HEADER, metadata_of, request_id_of
from authsvc.gateway.metrics import METRICS_PATH, GatewayMetrics
from authsvc.gateway.openapi import build_document
from authsvc.gateway.routes import Route, service_routes
from authsvc.gateway.settings import GatewaySettings, Network
from authsvc.gateway.transcoding import message_to_json, request_from_http
from authsvc.gateway.upstream import Upstream, channel_credentials, read_gateway_secret

MAX_BODY_BYTES = 64 * 1024
JSON_MEDIA_TYPE = "application/json"
OPENAPI_PATH = "/api/v1/openapi.json"
HEALTH_PATH = "/healthz"

UPSTREAM_KEY = web.AppKey("upstream", Upstream)
REQUEST_ID_KEY = web.RequestKey("request_id", str)

log = logging.getLogger("authsvc.gateway")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(settings: GatewaySettings, routes: Sequence[Route] | None = None) -> web.Application:
    """The gateway application; its gRPC channel opens on start-up and closes on clean-up."""
    routes = service_routes(include_internal=settings.expose_internal) if routes is None else tuple(routes)
    # aiohttp refuses bodies of client_max_size bytes or more; the limit itself is still allowed.
    metrics = GatewayMetrics()
    app = web.Application(
        middlewares=[metrics.middleware(), _error_middleware], client_max_size=MAX_BODY_BYTES + 1
    )
    document = build_document(routes)
    # Read the TLS files now, so that a missing one fails the start, not the first request.
    credentials = channel_credentials(settings) if settings.grpc_tls else None
    secret = read_gateway_secret(settings)

    async def upstream_context(app: web.Application) -> Any:
        upstream = Upstream(
            settings.grpc_target,
            routes,
            settings.deadline_seconds,
            credentials,
            settings.grpc_tls_server_name,
            secret=secret,
        )
        app[UPSTREAM_KEY] = upstream
        yield
        await upstream.close()

    app.cleanup_ctx.append(upstream_context)
    for route in routes:
        app.router.add_route(
            route.http_method, route.router_path, _rpc_handler(route, settings.http_trusted_proxies)
        )
    app.router.add_get(HEALTH_PATH, _health)
    app.router.add_get(OPENAPI_PATH, _json_handler(document))
    app.router.add_get(DISCOVERY_PATH, _discovery_handler(settings, routes))
    add_account_routes(app)
    app.router.add_get(METRICS_PATH, metrics.handle)
    return app


def _rpc_handler(route: Route, trusted_proxies: Sequence[Network] = ()) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        if route.requires_bearer and "Authorization" not in request.headers:
            raise errors.not_authenticated()
        body = await _read_body(request) if route.body else b""
        # A whole-body route reads no query parameters: skip parsing them.
        query = list(request.query.items()) if route.body != "*" else []
        message = request_from_http(route, body, request.match_info, query)
        metadata = metadata_of(request, request[REQUEST_ID_KEY], trusted_proxies)
        response, cache_control = await request.app[UPSTREAM_KEY].call(route, message, metadata)
        payload: Any = message_to_json(response)
        if route.response_body:
            payload = payload.get(route.response_body)
        answer = _json(payload, route.success_status)
        if cache_control:
            answer.headers["Cache-Control"] = cache_control
        return answer

    handle.__name__ = f"rest_{route.rpc_name}"
    return handle


async def _read_body(request: web.Request) -> bytes:
    """The body of a route that takes one, which must be declared JSON unless it is empty.

    A body is read only as `application/json` (with at most `charset=utf-8`): a browser sends `text/plain`,
    form and untyped bodies cross-origin without a CORS preflight, so accepting them would let any web
    page post to this API through its visitors' browsers. An empty body is the empty message whatever its
    Content-Type or none (`curl -X POST` with no data, aiohttp's client labelling it
    application/octet-stream, the account page's logout-all): it carries nothing a page could forge.
    """
    declared = request.headers.getall("Content-Type", [])
    is_json = len(declared) == 1 and is_json_media_type(declared[0])
    if not is_json and request.content_length:  # refused before reading
        raise errors.unsupported_media_type()
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise errors.body_too_large(MAX_BODY_BYTES)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise errors.body_too_large(MAX_BODY_BYTES) from exc
    except web.RequestPayloadError as exc:  # broken chunked framing or content coding: the client's fault
        raise errors.bad_request("The request body could not be read", "MALFORMED_HTTP") from exc
    except ConnectionError as exc:  # the client left mid-body: nobody reads the answer, nothing to log
        raise errors.client_closed() from exc
    if body and not is_json:  # chunked, so no Content-Length to refuse it by
        raise errors.unsupported_media_type()
    return body


def is_json_media_type(content_type: str) -> bool:
    """Whether a Content-Type value is `application/json`, compared case-insensitively, whose only
    parameter may be `charset=utf-8` (RFC 8259 defines no parameter; JSON between systems is UTF-8)."""
    media_type, *parameters = content_type.split(";")
    if media_type.strip().lower() != JSON_MEDIA_TYPE:
        return False
    for parameter in parameters:
        if not parameter.strip():  # RFC 9110, section 5.6.6: empty parameters are allowed
            continue
        name, _, value = parameter.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if name.strip().lower() != "charset" or value.lower() != "utf-8":
            return False
    return True


async def _health(request: web.Request) -> web.StreamResponse:
    metadata = [("x-request-id", request[REQUEST_ID_KEY])]
    if await request.app[UPSTREAM_KEY].is_serving(metadata):
        return _json({"status": "SERVING"}, 200)
    raise GatewayError(503, "UNAVAILABLE", "The gRPC server is not serving", "NOT_SERVING")


def _json_handler(payload: Any) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return _json(payload, 200)

    return handle


def _discovery_handler(settings: GatewaySettings, routes: Sequence[Route]) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        base_url = base_url_of(request, settings.public_url)
        answer = _json(discovery_document(settings.issuer, base_url, routes), 200)
        answer.headers["Cache-Control"] = DISCOVERY_CACHE_CONTROL
        if not settings.public_url:
            answer.headers["Vary"] = "Host"
        return answer

    return handle


def _json(payload: Any, status: int) -> web.Response:
    return web.Response(status=status, text=json.dumps(payload), content_type="application/json")


@web.middleware
async def _error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request_id_of(request)
    request[REQUEST_ID_KEY] = request_id
    try:
        response = await handler(request)
    except GatewayError as exc:
        response = exc.to_response()
    except web.HTTPException as exc:
        response = _from_http_exception(exc).to_response()
    except Exception:
        log.exception("unexpected error", extra=_log_fields(request, request_id))
        response = errors.internal_error().to_response()
    if response.status >= 500:
        log.warning("answered %d", response.status, extra=_log_fields(request, request_id))
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _log_fields(request: web.Request, request_id: str) -> dict[str, str]:
    return {"request_id": request_id, "method": request.method, "path": request.path}


def _from_http_exception(exc: web.HTTPException) -> GatewayError:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return errors.method_not_allowed(set(exc.allowed_methods))
    if isinstance(exc, web.HTTPNotFound):
        return errors.route_not_found()
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return errors.body_too_large(MAX_BODY_BYTES)
    code = "INVALID_ARGUMENT" if 400 <= exc.status < 500 else "INTERNAL"
    return GatewayError(exc.status, code, exc.reason, exc.reason.upper().replace(" ", "_"))
