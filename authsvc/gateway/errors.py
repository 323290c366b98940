"""gRPC status -> HTTP answer: the one code table, and the one error body `{"detail", "code", "reason"}`.

The table is grpc-gateway's (`runtime/errors.go`, HTTPStatusFromCode). The reason is the stable word of the
status's `google.rpc.ErrorInfo` detail; throttling adds a `google.rpc.RetryInfo` whose delay becomes
`Retry-After` (RFC 9110, section 10.2.3), and every 401 names its scheme in `WWW-Authenticate` (RFC 6750).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

import grpc
from aiohttp import web
from authsvc_proto.errors import ErrorDetails, decode_details, details_of

DEFAULT_RETRY_AFTER_SECONDS = 1

HTTP_STATUS_BY_CODE: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}

# Statuses that did not come from authsvc's own error table (no ErrorInfo of its domain) may carry the
# channel's internals (addresses, resolver errors): those get a fixed message and reason instead.
_GENERIC_BY_CODE: Mapping[grpc.StatusCode, tuple[str, str]] = {
    grpc.StatusCode.UNAVAILABLE: ("The authentication service is unavailable", "SERVICE_UNAVAILABLE"),
    grpc.StatusCode.DEADLINE_EXCEEDED: ("The authentication service did not answer in time", "TIMEOUT"),
    grpc.StatusCode.UNKNOWN: ("Internal error", "INTERNAL"),
    grpc.StatusCode.INTERNAL: ("Internal error", "INTERNAL"),
    grpc.StatusCode.DATA_LOSS: ("Internal error", "INTERNAL"),
    grpc.StatusCode.CANCELLED: ("The call was cancelled", "CANCELLED"),
}


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status for a gRPC code; 500 for anything the table does not know."""
    return HTTP_STATUS_BY_CODE.get(code, 500)


# Not frozen: the interpreter sets __traceback__ and __context__ on exceptions it raises.
@dataclass(eq=False)
class GatewayError(Exception):
    """An answer in the error shape; raised inside handlers, turned into a response by the app."""

    status: int
    code: str
    detail: str
    reason: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, str]:
        return {"detail": self.detail, "code": self.code, "reason": self.reason}

    def to_response(self) -> web.Response:
        return web.Response(
            status=self.status,
            text=json.dumps(self.body()),
            content_type="application/json",
            headers=dict(self.headers),
        )


def error_from_status(
    code: grpc.StatusCode,
    message: str,
    details: bytes | None,
) -> GatewayError:
    """Build the HTTP error for a gRPC status with its optional `grpc-status-details-bin` payload."""
    return _error(code, message, decode_details(details))


def _error(code: grpc.StatusCode, message: str, decoded: ErrorDetails) -> GatewayError:
    retry_delay = decoded.retry_after
    if decoded.reason is not None:
        detail, reason = message, decoded.reason
    elif code in _GENERIC_BY_CODE:
        detail, reason = _GENERIC_BY_CODE[code]
    else:
        detail, reason = message or code.name.replace("_", " ").capitalize(), code.name
    status = http_status(code)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 429:
        seconds = DEFAULT_RETRY_AFTER_SECONDS if retry_delay is None else max(0, math.ceil(retry_delay))
        headers["Retry-After"] = str(seconds)
    return GatewayError(status=status, code=code.name, detail=detail, reason=reason, headers=headers)


def error_from_rpc(exc: grpc.aio.AioRpcError) -> GatewayError:
    """The HTTP error for a failed call, reading ErrorInfo and RetryInfo from its trailing metadata."""
    # grpc.aio hands back (key, value) pairs; grpc-stubs types them as the sync API's _Metadatum.
    trailing = cast(Iterable[tuple[str, str | bytes]], exc.trailing_metadata() or ())
    return _error(exc.code(), exc.details() or "", details_of(trailing))


# Errors the gateway answers on its own, before or instead of a call.
def not_authenticated() -> GatewayError:
    """An RPC marked `requires_bearer` got no Authorization header at all (docs/api.md: 403)."""
    return GatewayError(403, "UNAUTHENTICATED", "Not authenticated", "NOT_AUTHENTICATED")


def bad_request(detail: str, reason: str) -> GatewayError:
    return GatewayError(400, "INVALID_ARGUMENT", detail, reason)


def body_too_large(limit: int) -> GatewayError:
    return GatewayError(413, "RESOURCE_EXHAUSTED", f"Request body exceeds {limit} bytes", "BODY_TOO_LARGE")


def unsupported_media_type() -> GatewayError:
    """A body that is not declared `application/json` (RFC 9110, section 15.5.16)."""
    return GatewayError(
        415,
        "INVALID_ARGUMENT",
        "The request body must be JSON sent as Content-Type: application/json (UTF-8)",
        "UNSUPPORTED_MEDIA_TYPE",
    )


def client_closed() -> GatewayError:
    """The client closed the connection before its request was read (nginx's 499, as for CANCELLED)."""
    return GatewayError(499, "CANCELLED", "The client closed the connection", "CLIENT_CLOSED_REQUEST")


def route_not_found() -> GatewayError:
    return GatewayError(404, "NOT_FOUND", "Not found", "ROUTE_NOT_FOUND")


def method_not_allowed(allowed: set[str] | frozenset[str]) -> GatewayError:
    # RFC 9110, section 15.5.6: a 405 lists the methods the resource does support.
    return GatewayError(
        405,
        "UNIMPLEMENTED",
        "Method not allowed",
        "METHOD_NOT_ALLOWED",
        headers={"Allow": ", ".join(sorted(allowed))},
    )


def internal_error() -> GatewayError:
    return GatewayError(500, "INTERNAL", "Internal error", "INTERNAL")
