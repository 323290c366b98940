"""Refresh: rotation by compare-and-set, the grace window for the immediate parent, reuse detection."""

from __future__ import annotations

import asyncio
import os

import grpc
import jwt
import pytest
from authsvc_proto.v1 import auth_pb2

from authsvc.domain.refresh_tokens import RefreshTokenMac
from tests.status import expect_error


def generation_of(refresh_token: str) -> int:
    return int(refresh_token.split("_")[2])


@pytest.fixture
def refresh(auth_server):
    async def _refresh(token: str) -> auth_pb2.TokenPair:
        return await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=token))

    return _refresh


async def test_refresh_returns_a_new_pair_for_the_same_session(register, login, refresh, auth_server):
    await register()
    pair = await login()
    auth_server.clock.advance(1)
    renewed = await refresh(pair.refresh_token)
    assert renewed.session_id == pair.session_id
    assert renewed.refresh_token != pair.refresh_token
    assert renewed.access_token != pair.access_token
    assert (renewed.token_type, renewed.expires_in, renewed.refresh_expires_in) == ("Bearer", 900, 2592000)


async def test_the_new_refresh_token_refreshes_again(register, login, refresh, auth_server):
    await register()
    token = (await login()).refresh_token
    for _ in range(3):
        auth_server.clock.advance(1)
        token = (await refresh(token)).refresh_token


async def test_the_parent_replayed_inside_the_grace_window_gets_the_same_child(
    register, login, refresh, auth_server
):
    await register()
    pair = await login()
    child = await refresh(pair.refresh_token)
    auth_server.clock.advance(9)
    replay = await refresh(pair.refresh_token)
    assert replay.refresh_token == child.refresh_token
    assert replay.session_id == child.session_id
    # The session is intact: the child still refreshes.
    await refresh(child.refresh_token)


async def test_the_parent_after_the_grace_window_is_reuse_and_revokes_the_session(
    register, login, refresh, auth_server
):
    await register()
    pair = await login()
    child = await refresh(pair.refresh_token)
    auth_server.clock.advance(11)
    await expect_error(refresh(pair.refresh_token), grpc.StatusCode.UNAUTHENTICATED, "REFRESH_TOKEN_REUSED")
    await expect_error(refresh(child.refresh_token), grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED")


async def test_a_grandparent_token_is_reuse_even_inside_the_window(register, login, refresh, auth_server):
    await register()
    grandparent = await login()
    parent = await refresh(grandparent.refresh_token)
    auth_server.clock.advance(1)
    child = await refresh(parent.refresh_token)
    await expect_error(
        refresh(grandparent.refresh_token), grpc.StatusCode.UNAUTHENTICATED, "REFRESH_TOKEN_REUSED"
    )
    await expect_error(refresh(child.refresh_token), grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED")


async def test_reuse_revokes_the_access_token_of_the_session_too(register, login, refresh, auth_server):
    await register()
    pair = await login()
    child = await refresh(pair.refresh_token)
    auth_server.clock.advance(11)
    await expect_error(refresh(pair.refresh_token), grpc.StatusCode.UNAUTHENTICATED, "REFRESH_TOKEN_REUSED")
    call = auth_server.stub.LogoutAll(
        auth_pb2.LogoutAllRequest(), metadata=(("authorization", f"Bearer {child.access_token}"),)
    )
    await expect_error(call, grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED")


@pytest.mark.parametrize("server_settings", [{"refresh_grace_seconds": 0}], indirect=True)
async def test_a_zero_grace_window_makes_any_replay_reuse(register, login, refresh):
    await register()
    pair = await login()
    await refresh(pair.refresh_token)
    await expect_error(refresh(pair.refresh_token), grpc.StatusCode.UNAUTHENTICATED, "REFRESH_TOKEN_REUSED")


async def test_fifty_concurrent_refreshes_rotate_once_and_all_get_the_same_child(
    register, login, refresh, auth_server
):
    await register()
    pair = await login()
    answers = await asyncio.gather(*(refresh(pair.refresh_token) for _ in range(50)))
    children = {answer.refresh_token for answer in answers}
    assert len(children) == 1
    child = children.pop()
    assert generation_of(child) == 1
    # Rotated exactly once: the child is current, and rotates to generation 2.
    auth_server.clock.advance(1)
    grandchild = await refresh(child)
    assert generation_of(grandchild.refresh_token) == 2


async def test_an_expired_refresh_token_is_token_expired(register, login, refresh, auth_server):
    await register()
    pair = await login()
    auth_server.clock.advance(2592000 + 1)
    await expect_error(refresh(pair.refresh_token), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED")


async def test_an_access_token_is_not_accepted_as_a_refresh_token(register, login, refresh):
    await register()
    pair = await login()
    await expect_error(refresh(pair.access_token), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")


@pytest.mark.parametrize(
    ("token", "code", "reason"),
    [
        ("", grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID"),
        ("garbage", grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID"),
        ("a.b.c", grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID"),
        ("x" * 5000, grpc.StatusCode.INVALID_ARGUMENT, "TOKEN_TOO_LONG"),
    ],
)
async def test_malformed_refresh_tokens_are_refused(refresh, token, code, reason):
    await expect_error(refresh(token), code, reason)


async def test_a_token_minted_under_another_secret_is_invalid(register, login, refresh):
    await register()
    pair = await login()
    forged = RefreshTokenMac(os.urandom(32)).mint(pair.session_id, 0)
    await expect_error(refresh(forged), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")
    await refresh(pair.refresh_token)  # the genuine one still works: the refusal was about the MAC


async def test_a_refresh_token_is_opaque_not_a_jwt(register, login):
    await register()
    pair = await login()
    assert pair.refresh_token.startswith(f"rt1_{pair.session_id}_0_")
    with pytest.raises(jwt.DecodeError):
        jwt.decode(pair.refresh_token, options={"verify_signature": False})
