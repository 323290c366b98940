"""The error contract: the domain, the reason words, and the one encoder and decoder of error details.

An error answer carries a `google.rpc.ErrorInfo` (domain `authsvc`, a word of `ErrorReason`) and, when
throttled, a `google.rpc.RetryInfo`, packed in `grpc-status-details-bin`. The server encodes them here;
the gateway and the client decode them here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from authsvc_proto.v1.errors_pb2 import ErrorReason

__all__ = [
    "ERROR_DOMAIN",
    "STATUS_DETAILS_KEY",
    "ErrorDetails",
    "ErrorReason",
    "decode_details",
    "details_of",
    "rich_status",
    "word",
]

ERROR_DOMAIN = "authsvc"
STATUS_DETAILS_KEY = "grpc-status-details-bin"


def word(reason: ErrorReason.ValueType) -> str:
    """The word sent on the wire for an enum value: its name."""
    return ErrorReason.Name(reason)


@dataclass(frozen=True, slots=True)
class ErrorDetails:
    """What an error answer says beyond its code: authsvc's reason word and the retry delay, if any."""

    reason: str | None = None
    retry_after: float | None = None


def rich_status(
    code: grpc.StatusCode, message: str, reason: str, retry_after: float | None = None
) -> grpc.Status:
    """A status with ErrorInfo (and RetryInfo when `retry_after` is given) in `grpc-status-details-bin`."""
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN))
    details = [info]
    if retry_after is not None:
        retry = any_pb2.Any()
        delay = duration_pb2.Duration(seconds=max(1, math.ceil(retry_after)))
        retry.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        details.append(retry)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=details)
    return rpc_status.to_status(status)


def decode_details(payload: bytes | None) -> ErrorDetails:
    """Read a `grpc-status-details-bin` payload. A reason of another domain, or a malformed payload, is
    no reason at all: callers fall back to the status code, never fail on the details."""
    if not payload:
        return ErrorDetails()
    status = status_pb2.Status()
    try:
        status.ParseFromString(payload)
    except DecodeError:
        return ErrorDetails()
    reason: str | None = None
    retry_after: float | None = None
    for detail in status.details:
        # Any.Unpack answers False, leaving the target alone, when the detail is of another type.
        info = error_details_pb2.ErrorInfo()
        retry = error_details_pb2.RetryInfo()
        if reason is None and detail.Unpack(info):
            reason = info.reason if info.domain == ERROR_DOMAIN else None
        elif retry_after is None and detail.Unpack(retry):
            retry_after = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
    return ErrorDetails(reason, retry_after)


def details_of(metadata: Iterable[tuple[str, str | bytes]] | None) -> ErrorDetails:
    """The details carried by a call's trailing metadata (sync or aio, as (key, value) pairs)."""
    for key, value in metadata or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            return decode_details(value)
    return ErrorDetails()
