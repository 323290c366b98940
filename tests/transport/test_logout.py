"""Logout and LogoutAll: the seed's logout cases at the gRPC level."""

from __future__ import annotations

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2

from tests.status import expect_error


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
def logout(auth_server):
    async def _logout(token: str) -> auth_pb2.LogoutResponse:
        return await auth_server.stub.Logout(auth_pb2.LogoutRequest(refresh_token=token))

    return _logout


@pytest.fixture
def logout_all(auth_server):
    async def _logout_all(metadata=()) -> auth_pb2.LogoutAllResponse:
        return await auth_server.stub.LogoutAll(auth_pb2.LogoutAllRequest(), metadata=metadata)

    return _logout_all


@pytest.fixture
def refresh(auth_server):
    async def _refresh(token: str) -> auth_pb2.TokenPair:
        return await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=token))

    return _refresh


async def test_logout_succeeds_with_the_seed_message(register, login, logout):
    await register()
    pair = await login()
    answer = await logout(pair.refresh_token)
    assert answer.message == "Logged out successfully"


async def test_logout_with_an_invalid_token_is_unauthenticated(logout):
    await expect_error(logout("not a token"), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")


async def test_a_logged_out_refresh_token_cannot_refresh(register, login, logout, refresh):
    await register()
    pair = await login()
    await logout(pair.refresh_token)
    await expect_error(refresh(pair.refresh_token), grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED")


async def test_logging_out_twice_answers_ok_and_a_session_ended_otherwise_is_session_revoked(
    register, login, logout, logout_all
):
    """Logout is retry-safe: a client whose answer was lost sends it again and is told it is logged out."""
    await register()
    pair, other, third = await login(), await login(), await login()
    await logout(pair.refresh_token)
    answer = await logout(pair.refresh_token)
    assert answer.message == "Logged out successfully"
    await logout_all(bearer(third.access_token))
    await expect_error(logout(other.refresh_token), grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED")


async def test_logout_revokes_only_that_session(register, login, logout, refresh):
    await register()
    phone, laptop = await login(), await login()
    await logout(phone.refresh_token)
    await refresh(laptop.refresh_token)


async def test_the_access_token_of_a_logged_out_session_is_rejected_at_once(
    register, login, logout, logout_all
):
    await register()
    pair = await login()
    await logout(pair.refresh_token)
    await expect_error(
        logout_all(bearer(pair.access_token)), grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED"
    )


async def test_logout_with_the_parent_inside_the_grace_window_ends_the_session(
    register, login, logout, refresh
):
    await register()
    pair = await login()
    child = await refresh(pair.refresh_token)
    await logout(pair.refresh_token)
    await expect_error(refresh(child.refresh_token), grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED")


async def test_logout_all_revokes_every_session_and_counts_them(register, login, logout_all):
    await register()
    devices = [await login() for _ in range(3)]
    answer = await logout_all(bearer(devices[0].access_token))
    assert (answer.message, answer.revoked_sessions) == ("Logged out from all devices successfully", 3)


async def test_logout_all_leaves_other_users_alone(register, login, logout_all, refresh):
    await register("ada@example.com")
    await register("bob@example.com")
    ada = await login("ada@example.com")
    bob = await login("bob@example.com")
    answer = await logout_all(bearer(ada.access_token))
    assert answer.revoked_sessions == 1
    await refresh(bob.refresh_token)


async def test_after_logout_all_every_device_token_is_rejected(register, login, logout_all, refresh):
    await register()
    devices = [await login() for _ in range(3)]
    await logout_all(bearer(devices[1].access_token))
    for device in devices:
        await expect_error(refresh(device.refresh_token), grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED")
        await expect_error(
            logout_all(bearer(device.access_token)), grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED"
        )


async def test_logout_all_without_metadata_is_not_authenticated(logout_all):
    error = await expect_error(logout_all(), grpc.StatusCode.UNAUTHENTICATED, "NOT_AUTHENTICATED")
    assert error.details() == "Not authenticated"


@pytest.mark.parametrize(
    "metadata",
    [
        (("authorization", "Bearer not-a-token"),),
        (("authorization", "Basic YWRhOnB3"),),
        (("authorization", "Bearer"),),
    ],
)
async def test_logout_all_with_an_invalid_bearer_is_token_invalid(logout_all, metadata):
    await expect_error(logout_all(metadata), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")


async def test_a_refresh_token_is_not_accepted_as_a_bearer(register, login, logout_all):
    await register()
    pair = await login()
    await expect_error(
        logout_all(bearer(pair.refresh_token)), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID"
    )


async def test_an_expired_access_token_is_token_expired(register, login, logout_all, auth_server):
    await register()
    pair = await login()
    auth_server.clock.advance(901)
    await expect_error(
        logout_all(bearer(pair.access_token)), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED"
    )


async def test_logout_all_with_no_other_session_counts_only_the_callers(register, login, logout, logout_all):
    await register()
    old, current = await login(), await login()
    await logout(old.refresh_token)
    answer = await logout_all(bearer(current.access_token))
    assert answer.revoked_sessions == 1
