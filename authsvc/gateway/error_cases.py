"""The error answers each route can give, as (HTTP status, code, reason): what the OpenAPI document lists.

Each is built by the functions that really answer it (errors.py), so the list cannot drift from them:
the gateway's own refusals, the failures any call may end in, and the words the contract lists for the
RPC in `(authsvc.v1.error_reasons)`, each at the code errors.proto gives it in `(authsvc.v1.grpc_code)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from authsvc_proto.errors import STATUS_DETAILS_KEY, ErrorReason, rich_status, word
from authsvc_proto.v1 import errors_pb2
from google.rpc import code_pb2

from authsvc.gateway import errors
from authsvc.gateway.errors import GatewayError
from authsvc.gateway.routes import Route

# gRPC statuses without authsvc's ErrorInfo that any call may end in, answered as errors.py maps them:
# past the server's concurrency limit, a server without the method, an unexpected failure, the server
# unreachable or too slow. (CANCELLED is left out: its 499 goes to a client that has gone.)
_ANY_CALL_CODES = (
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.DATA_LOSS,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
)


@dataclass(frozen=True, order=True)
class ErrorCase:
    """One error answer: its HTTP status, `code` and `reason`."""

    status: int
    code: str
    reason: str

    @classmethod
    def of(cls, error: GatewayError) -> ErrorCase:
        return cls(error.status, error.code, error.reason)


def route_error_cases(route: Route) -> list[ErrorCase]:
    """Every error answer `route` can give, sorted."""
    answers = _any_request()
    if route.body:
        answers += [
            errors.bad_request("", word(ErrorReason.INVALID_JSON)),
            errors.body_too_large(0),  # only its status, code and reason are read
            errors.unsupported_media_type(),
        ]
    if route.request_descriptor.fields:  # a body, a path variable or the query string can fill them
        answers.append(errors.bad_request("", word(ErrorReason.INVALID_FIELD)))
    if route.requires_bearer:
        answers.append(errors.not_authenticated())
    answers += [errors.error_from_status(code, "", None) for code in _ANY_CALL_CODES]
    answers += [_server_answer(reason) for reason in route.error_reasons]
    return sorted({ErrorCase.of(answer) for answer in answers})


def health_error_cases() -> list[ErrorCase]:
    """The error answers of `GET /healthz`, which asks the server's health and fails no other way."""
    not_serving = ErrorCase(503, grpc.StatusCode.UNAVAILABLE.name, word(ErrorReason.NOT_SERVING))
    return sorted({*(ErrorCase.of(answer) for answer in _any_request()), not_serving})


def _any_request() -> list[GatewayError]:
    """Malformed HTTP, refused before routing, and the gateway's own unexpected failure."""
    return [
        errors.bad_request("", word(ErrorReason.REQUEST_HEAD_TOO_LARGE)),
        errors.bad_request("", word(ErrorReason.MALFORMED_HTTP)),
        errors.internal_error(),
    ]


def _server_answer(reason: str) -> GatewayError:
    """What the gateway answers for a status carrying `reason`, at the code the contract gives the word."""
    option = ErrorReason.DESCRIPTOR.values_by_name[reason].GetOptions().Extensions[errors_pb2.grpc_code]
    code = grpc.StatusCode[code_pb2.Code.Name(option)]
    details = dict(rich_status(code, "", reason).trailing_metadata)[STATUS_DETAILS_KEY]
    return errors.error_from_status(code, "", details if isinstance(details, bytes) else None)
