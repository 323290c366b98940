"""Failures become the exception of their kind, by status code and reason word, with both clients.

The real service cannot be made to throttle or fail on demand here, so a scripted fake AuthService
answers each status exactly as the service would: a google.rpc.Status with an ErrorInfo (and RetryInfo).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from authsvc_client import (
    NO_RETRIES,
    AlreadyExists,
    AsyncAuthClient,
    AuthClient,
    AuthServiceError,
    InvalidArgument,
    InvalidCredentials,
    InvalidToken,
    NotFound,
    PermissionDenied,
    Throttled,
    Unauthenticated,
    Unavailable,
)
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from tests.clients.conftest import ThreadedClient, start_fake


def rich(code: grpc.StatusCode, reason: str, retry_after: int | None = None) -> grpc.Status:
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="authsvc"))
    details = [info]
    if retry_after is not None:
        retry = any_pb2.Any()
        retry.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=retry_after)))
        details.append(retry)
    message = status_pb2.Status(code=getattr(code_pb2, code.name), message="the message", details=details)
    return rpc_status.to_status(message)


@pytest.fixture(params=["async", "sync"])
async def make_client(request):
    """Build AsyncAuthClient or AuthClient (calls run in a thread) to a target; closed at the end."""
    made: list[Any] = []

    def _make(target: str, **options):
        if request.param == "async":
            made.append(AsyncAuthClient(target, **options))
            return made[-1]
        made.append(AuthClient(target, **options))
        return ThreadedClient(made[-1])

    yield _make
    for client in made:
        closed = client.close()
        if asyncio.iscoroutine(closed):
            await closed


@pytest.fixture
async def answering(make_client):
    """Start a fake whose Login answers `status`; return a client (without retries) to it."""
    servers = []

    async def _answering(status: grpc.Status):
        async def login(request, context):
            await context.abort(status.code, status.details, status.trailing_metadata)

        server, target = await start_fake({"Login": login})
        servers.append(server)
        return make_client(target, retry=NO_RETRIES)

    yield _answering
    for server in servers:
        await server.stop(0)


CASES = [
    (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS", InvalidCredentials),
    (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID", InvalidToken),
    (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED", InvalidToken),
    (grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED", InvalidToken),
    (grpc.StatusCode.UNAUTHENTICATED, "REFRESH_TOKEN_REUSED", InvalidToken),
    (grpc.StatusCode.UNAUTHENTICATED, "NOT_AUTHENTICATED", Unauthenticated),
    (grpc.StatusCode.INVALID_ARGUMENT, "WEAK_PASSWORD", InvalidArgument),
    (grpc.StatusCode.INVALID_ARGUMENT, "RESET_TOKEN_INVALID", InvalidArgument),
    (grpc.StatusCode.INVALID_ARGUMENT, "VERIFICATION_TOKEN_INVALID", InvalidArgument),
    (grpc.StatusCode.INVALID_ARGUMENT, "DISPLAY_NAME_INVALID", InvalidArgument),
    (grpc.StatusCode.ALREADY_EXISTS, "EMAIL_TAKEN", AlreadyExists),
    (grpc.StatusCode.NOT_FOUND, "SESSION_NOT_FOUND", NotFound),
    (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND", NotFound),
    (grpc.StatusCode.PERMISSION_DENIED, "INTROSPECTION_LOOPBACK_ONLY", PermissionDenied),
    (grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_DISABLED", PermissionDenied),
    (grpc.StatusCode.PERMISSION_DENIED, "ADMIN_ONLY", PermissionDenied),
    (grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE", Unavailable),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "REQUEST_TOO_LARGE", AuthServiceError),
    (grpc.StatusCode.INTERNAL, "INTERNAL", AuthServiceError),
]


@pytest.mark.parametrize(("code", "reason", "error"), CASES, ids=[f"{c.name} {r}" for c, r, _ in CASES])
async def test_each_status_and_reason_raises_its_exception_with_code_and_reason(
    answering, code, reason, error
):
    client = await answering(rich(code, reason))
    with pytest.raises(AuthServiceError) as caught:
        await client.login("ada@example.com", "whatever-password")
    assert type(caught.value) is error
    assert (caught.value.code, caught.value.reason, caught.value.message) == (code, reason, "the message")


async def test_throttled_carries_the_retry_delay(answering):
    client = await answering(rich(grpc.StatusCode.RESOURCE_EXHAUSTED, "THROTTLED", retry_after=42))
    with pytest.raises(Throttled) as caught:
        await client.login("ada@example.com", "whatever-password")
    assert (caught.value.reason, caught.value.retry_after) == ("THROTTLED", 42.0)


async def test_a_status_without_details_still_maps_by_code(answering):
    client = await answering(
        SimpleNamespace(code=grpc.StatusCode.UNAUTHENTICATED, details="plain", trailing_metadata=())
    )
    with pytest.raises(Unauthenticated) as caught:
        await client.login("ada@example.com", "whatever-password")
    assert (type(caught.value), caught.value.reason, caught.value.message) == (Unauthenticated, None, "plain")
