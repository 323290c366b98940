"""Refresh tokens issued before opaque ones (JWTs with `type: refresh`) keep working until they expire:
the upgrade signs nobody out, and every rule of refresh holds for them."""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import jwt
import pytest
from authsvc_proto.v1 import auth_pb2

from authsvc.clock import to_epoch_seconds
from authsvc.domain.keys import KeyRing
from authsvc.domain.tokens import token_hash
from authsvc.store import NewSession
from authsvc.store.key_files import load_or_create_keys
from authsvc.store.sql import open_store
from tests.status import expect_error

REFRESH_TTL = timedelta(days=30)


async def legacy_session(auth_server, user_id: str) -> tuple[str, str]:
    """A session as the previous version opened it: its refresh token a signed JWT, stored as a hash."""
    now = auth_server.clock()
    key = KeyRing.from_files(load_or_create_keys(auth_server.settings.signing_keys_dir, now)).signing_at(now)
    session_id = str(uuid.uuid4())
    claims = {
        "iss": "authsvc",
        "aud": "authsvc",
        "sub": user_id,
        "sid": session_id,
        "jti": f"{session_id}.0",
        "gen": 0,
        "iat": to_epoch_seconds(now),
        "exp": to_epoch_seconds(now + REFRESH_TTL),
        "type": "refresh",
    }
    token = jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})
    store = await open_store(auth_server.settings.database_url)
    try:
        await store.create_session(
            NewSession(session_id, user_id, token_hash(token), now, now + REFRESH_TTL, "Old/1", "203.0.113.9")
        )
    finally:
        await store.close()
    return session_id, token


@pytest.fixture
async def legacy(auth_server, register):
    user = await register()
    return await legacy_session(auth_server, user.user_id)


async def test_a_legacy_refresh_token_refreshes_into_an_opaque_one(auth_server, legacy):
    session_id, token = legacy
    renewed = await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=token))
    assert renewed.session_id == session_id
    assert renewed.refresh_token.startswith(f"rt1_{session_id}_1_")
    auth_server.clock.advance(1)
    again = await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=renewed.refresh_token))
    assert again.refresh_token.startswith(f"rt1_{session_id}_2_")


async def test_a_replayed_legacy_parent_gets_the_same_child_then_counts_as_reuse(auth_server, legacy):
    _, token = legacy
    first = await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=token))
    replay = await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=token))
    assert replay.refresh_token == first.refresh_token
    auth_server.clock.advance(11)  # past the 10 s grace window
    await expect_error(
        auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=token)),
        grpc.StatusCode.UNAUTHENTICATED,
        "REFRESH_TOKEN_REUSED",
    )


async def test_a_legacy_refresh_token_logs_out(auth_server, legacy):
    _, token = legacy
    await auth_server.stub.Logout(auth_pb2.LogoutRequest(refresh_token=token))
    await expect_error(
        auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=token)),
        grpc.StatusCode.UNAUTHENTICATED,
        "SESSION_REVOKED",
    )


async def test_a_legacy_refresh_token_expires_as_it_always_did(auth_server, legacy):
    _, token = legacy
    auth_server.clock.advance(REFRESH_TTL.total_seconds() + 1)
    await expect_error(
        auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=token)),
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_EXPIRED",
    )


async def test_a_legacy_refresh_token_is_never_a_bearer(auth_server, legacy):
    _, token = legacy
    await expect_error(
        auth_server.stub.ListSessions(
            auth_pb2.ListSessionsRequest(), metadata=(("authorization", f"Bearer {token}"),)
        ),
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_INVALID",
    )
