"""The one gRPC-code -> HTTP table (grpc-gateway's runtime/errors.go) and the one error body."""

from __future__ import annotations

import grpc
import pytest

from authsvc.gateway.errors import HTTP_STATUS_BY_CODE, error_from_status, http_status
from tests.gateway.fakes import details_metadata

# Every row of grpc-gateway's HTTPStatusFromCode, written out so a change to the table shows here.
GRPC_GATEWAY_TABLE = [
    (grpc.StatusCode.OK, 200),
    (grpc.StatusCode.CANCELLED, 499),
    (grpc.StatusCode.UNKNOWN, 500),
    (grpc.StatusCode.INVALID_ARGUMENT, 400),
    (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    (grpc.StatusCode.NOT_FOUND, 404),
    (grpc.StatusCode.ALREADY_EXISTS, 409),
    (grpc.StatusCode.PERMISSION_DENIED, 403),
    (grpc.StatusCode.UNAUTHENTICATED, 401),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    (grpc.StatusCode.FAILED_PRECONDITION, 400),
    (grpc.StatusCode.ABORTED, 409),
    (grpc.StatusCode.OUT_OF_RANGE, 400),
    (grpc.StatusCode.UNIMPLEMENTED, 501),
    (grpc.StatusCode.INTERNAL, 500),
    (grpc.StatusCode.UNAVAILABLE, 503),
    (grpc.StatusCode.DATA_LOSS, 500),
]


@pytest.mark.parametrize(
    ("code", "status"), GRPC_GATEWAY_TABLE, ids=[code.name for code, _ in GRPC_GATEWAY_TABLE]
)
def test_each_grpc_code_maps_to_grpc_gateways_http_status(code: grpc.StatusCode, status: int) -> None:
    assert http_status(code) == status


def test_the_table_covers_every_grpc_code() -> None:
    assert set(HTTP_STATUS_BY_CODE) == set(grpc.StatusCode)


def _details(code: grpc.StatusCode, reason: str | None = None, retry_seconds: float | None = None) -> bytes:
    return details_metadata(code, "ignored", reason, retry_seconds)[0][1]


# (case, code, message, reason in ErrorInfo, expected status, expected body)
SPEC_ROWS = [
    ("malformed request", grpc.StatusCode.INVALID_ARGUMENT, "Invalid email", "INVALID_EMAIL", 400),
    ("wrong password", grpc.StatusCode.UNAUTHENTICATED, "Invalid credentials", "INVALID_CREDENTIALS", 401),
    ("email taken", grpc.StatusCode.ALREADY_EXISTS, "Email already registered", "EMAIL_TAKEN", 409),
    ("throttled", grpc.StatusCode.RESOURCE_EXHAUSTED, "Too many attempts", "THROTTLED", 429),
    ("store unreachable", grpc.StatusCode.UNAVAILABLE, "Store unavailable", "STORE_UNAVAILABLE", 503),
    ("unexpected", grpc.StatusCode.INTERNAL, "Internal error", "INTERNAL", 500),
]


@pytest.mark.parametrize(
    ("case", "code", "message", "reason", "status"), SPEC_ROWS, ids=[r[0] for r in SPEC_ROWS]
)
def test_spec_status_rows_answer_the_status_and_the_errorinfo_reason(
    case: str, code: grpc.StatusCode, message: str, reason: str, status: int
) -> None:
    error = error_from_status(code, message, _details(code, reason))

    assert error.status == status
    assert error.body() == {"detail": message, "code": code.name, "reason": reason}


def test_401_names_the_bearer_scheme() -> None:
    error = error_from_status(
        grpc.StatusCode.UNAUTHENTICATED, "Token invalid", _details(grpc.StatusCode.OK, "X")
    )
    assert error.headers == {"WWW-Authenticate": "Bearer"}


@pytest.mark.parametrize(("delay", "header"), [(30.0, "30"), (2.1, "3"), (0.4, "1"), (0.0, "0")])
def test_429_carries_retry_after_in_whole_seconds_rounded_up(delay: float, header: str) -> None:
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    error = error_from_status(code, "Too many attempts", _details(code, "THROTTLED", delay))
    assert error.headers == {"Retry-After": header}


def test_429_without_retry_info_still_carries_retry_after() -> None:
    error = error_from_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "Message too large", None)
    assert error.headers == {"Retry-After": "1"}
    assert error.reason == "RESOURCE_EXHAUSTED"


def test_a_channel_failure_gets_a_fixed_message_not_the_channels_internals() -> None:
    error = error_from_status(
        grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: 127.0.0.1:1", None
    )
    assert error.status == 503
    assert error.body() == {
        "detail": "The authentication service is unavailable",
        "code": "UNAVAILABLE",
        "reason": "SERVICE_UNAVAILABLE",
    }


def test_a_status_from_another_domain_keeps_its_message_with_the_code_name_as_reason() -> None:
    error = error_from_status(grpc.StatusCode.INVALID_ARGUMENT, "request too large", None)
    assert error.body() == {
        "detail": "request too large",
        "code": "INVALID_ARGUMENT",
        "reason": "INVALID_ARGUMENT",
    }


def test_malformed_status_details_are_ignored_rather_than_failing() -> None:
    error = error_from_status(grpc.StatusCode.UNAUTHENTICATED, "Token invalid", b"\xff\xff not a status")
    assert (error.status, error.reason) == (401, "UNAUTHENTICATED")
