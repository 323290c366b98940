"""Domain errors to gRPC status, through one table applied in one place (decoding.py's handler).

Every error answer carries a google.rpc.ErrorInfo detail with the stable reason word (and, when
throttled, a google.rpc.RetryInfo). Anything unmapped is INTERNAL with a generic message; the traceback
goes to the log, never to the client.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from authsvc_proto.errors import rich_status

from authsvc.domain import errors

log = logging.getLogger(__name__)

# Most specific first: the first class that matches decides.
STATUS_TABLE: tuple[tuple[type[errors.AuthError], grpc.StatusCode], ...] = (
    (errors.InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotAuthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.EmailTaken, grpc.StatusCode.ALREADY_EXISTS),
    (errors.SessionNotFound, grpc.StatusCode.NOT_FOUND),
    (errors.UserNotFound, grpc.StatusCode.NOT_FOUND),
    (errors.Throttled, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.ServiceUnavailable, grpc.StatusCode.UNAVAILABLE),
)


def status_code_for(error: errors.AuthError) -> grpc.StatusCode:
    for error_class, code in STATUS_TABLE:
        if isinstance(error, error_class):
            return code
    return grpc.StatusCode.INTERNAL


def status_for(error: errors.AuthError) -> grpc.Status:
    retry_after = error.retry_after_seconds if isinstance(error, errors.Throttled) else None
    return rich_status(status_code_for(error), error.message, error.reason, retry_after)


Context = grpc.aio.ServicerContext[Any, Any]


def status_for_exception(error: Exception, rpc: str) -> grpc.Status:
    """The status an RPC answers with when its handler raised `error`: the table above for domain errors,
    UNIMPLEMENTED for a method the servicer lacks, and INTERNAL with a generic message for anything else
    (its traceback goes to the log, never to the client)."""
    if isinstance(error, errors.AuthError):
        return status_for(error)
    if isinstance(error, NotImplementedError):
        return rich_status(grpc.StatusCode.UNIMPLEMENTED, "Method not implemented", "UNIMPLEMENTED")
    log.error("unexpected error in %s", rpc, exc_info=error)
    return rich_status(grpc.StatusCode.INTERNAL, "Internal error", "INTERNAL")
