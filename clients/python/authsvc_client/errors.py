"""The client's exceptions, one per failure kind, and the one place gRPC errors are turned into them.

Every exception carries the gRPC status code and the service's stable `reason` word (from the
`google.rpc.ErrorInfo` detail in `grpc-status-details-bin`); branch on the class or on `reason`, never on
the message text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from authsvc_proto.errors import details_of


class AuthServiceError(Exception):
    """Base of every error the client raises for a failed call: `code`, `reason` (or None), `message`."""

    def __init__(self, code: grpc.StatusCode, reason: str | None, message: str) -> None:
        super().__init__(f"{code.name} {reason or '-'}: {message}")
        self.code = code
        self.reason = reason
        self.message = message


class InvalidArgument(AuthServiceError):
    """The request was malformed (INVALID_ARGUMENT): bad email, weak or too long password, oversized token,
    a display name over 100 characters (`DISPLAY_NAME_INVALID`), or a wrong, used or expired reset or
    verification token (`RESET_TOKEN_INVALID`, `VERIFICATION_TOKEN_INVALID`)."""


class Unauthenticated(AuthServiceError):
    """The caller is not authenticated (UNAUTHENTICATED), e.g. `NOT_AUTHENTICATED` with no bearer at all."""


class InvalidCredentials(Unauthenticated):
    """Wrong password or unknown user (`INVALID_CREDENTIALS`); the service does not say which."""


class InvalidToken(Unauthenticated):
    """The token was refused; `reason`: TOKEN_INVALID, TOKEN_EXPIRED, SESSION_REVOKED or REFRESH_TOKEN_REUSED
    (after any but TOKEN_EXPIRED on an access token, the session is over: log in again)."""


class AlreadyExists(AuthServiceError):
    """The email is already registered (`EMAIL_TAKEN`)."""


class NotFound(AuthServiceError):
    """No such live session of the caller (`SESSION_NOT_FOUND`), or no account with the email an admin
    call named (`USER_NOT_FOUND`)."""


class PermissionDenied(AuthServiceError):
    """The caller may not do this (PERMISSION_DENIED): `ACCOUNT_DISABLED` (Login to an account an operator
    disabled), `ADMIN_ONLY` (an admin call by a user whose role is not `admin`), or
    `INTROSPECTION_LOOPBACK_ONLY` (Introspect without a configured secret answers loopback callers only)."""


class Throttled(AuthServiceError):
    """Too many attempts (`THROTTLED`); try again after `retry_after` seconds (None when not given)."""

    def __init__(
        self, code: grpc.StatusCode, reason: str | None, message: str, retry_after: float | None
    ) -> None:
        super().__init__(code, reason, message)
        self.retry_after = retry_after


class Unavailable(AuthServiceError):
    """The service or its store could not be reached, after the channel's retries (UNAVAILABLE)."""


class DeadlineExceeded(AuthServiceError):
    """No answer within the call's deadline (DEADLINE_EXCEEDED); the call may or may not have taken effect."""


TOKEN_REASONS = frozenset({"TOKEN_INVALID", "TOKEN_EXPIRED", "SESSION_REVOKED", "REFRESH_TOKEN_REUSED"})

# Most specific first: the first row whose code matches and whose reasons contain the reason decides
# (None matches any reason).
ERROR_TABLE: tuple[tuple[grpc.StatusCode, frozenset[str] | None, type[AuthServiceError]], ...] = (
    (grpc.StatusCode.UNAUTHENTICATED, frozenset({"INVALID_CREDENTIALS"}), InvalidCredentials),
    (grpc.StatusCode.UNAUTHENTICATED, TOKEN_REASONS, InvalidToken),
    (grpc.StatusCode.UNAUTHENTICATED, None, Unauthenticated),
    (grpc.StatusCode.INVALID_ARGUMENT, None, InvalidArgument),
    (grpc.StatusCode.ALREADY_EXISTS, None, AlreadyExists),
    (grpc.StatusCode.NOT_FOUND, None, NotFound),
    (grpc.StatusCode.PERMISSION_DENIED, None, PermissionDenied),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, frozenset({"THROTTLED"}), Throttled),
    (grpc.StatusCode.UNAVAILABLE, None, Unavailable),
    (grpc.StatusCode.DEADLINE_EXCEEDED, None, DeadlineExceeded),
)


def from_rpc_error(error: grpc.RpcError) -> AuthServiceError:
    """The client exception for a failed call (sync `grpc.RpcError` or `grpc.aio.AioRpcError`)."""
    call: Any = error
    if not callable(getattr(call, "code", None)):  # an RpcError that is not a finished call
        return AuthServiceError(grpc.StatusCode.UNKNOWN, None, str(error))
    code: grpc.StatusCode = call.code()
    message: str = call.details() or ""
    details = details_of(call.trailing_metadata())
    reason, retry_after = details.reason, details.retry_after
    for table_code, reasons, error_class in ERROR_TABLE:
        if code == table_code and (reasons is None or reason in reasons):
            if error_class is Throttled:
                return Throttled(code, reason, message, retry_after)
            return error_class(code, reason, message)
    return AuthServiceError(code, reason, message)


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Re-raise any gRPC failure inside the block as the matching AuthServiceError, `from` the original."""
    try:
        yield
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from exc
