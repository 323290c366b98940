"""Two replicas on one PostgreSQL behave as one service: any replica serves any request, and a
revocation on one is seen by the other at once."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from tests.status import expect_error

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"


@pytest.fixture
async def stubs(deployment):
    channels = [grpc.aio.insecure_channel(replica.target) for replica in deployment.replicas]
    try:
        yield [auth_pb2_grpc.AuthServiceStub(channel) for channel in channels]
    finally:
        for channel in channels:
            await channel.close(None)


@pytest.fixture
async def email(stubs):
    """A user registered on replica a (each test has its own)."""
    address = f"{uuid.uuid4().hex[:12]}@example.com"
    await stubs[0].Register(auth_pb2.RegisterRequest(email=address, password=PASSWORD))
    return address


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def test_a_session_opened_on_one_replica_is_refreshed_on_the_other(stubs, email):
    a, b = stubs
    pair = await a.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD))
    renewed = await b.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token))
    assert renewed.session_id == pair.session_id
    again = await a.Refresh(auth_pb2.RefreshRequest(refresh_token=renewed.refresh_token))
    assert again.session_id == pair.session_id


async def test_logout_all_on_one_replica_makes_the_other_reject_every_token_at_once(stubs, email):
    a, b = stubs
    devices = [
        await stub.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD)) for stub in (a, b, a, b)
    ]
    answer = await a.LogoutAll(auth_pb2.LogoutAllRequest(), metadata=bearer(devices[0].access_token))
    assert answer.revoked_sessions == 4
    for device in devices:
        await expect_error(
            b.Refresh(auth_pb2.RefreshRequest(refresh_token=device.refresh_token)),
            grpc.StatusCode.UNAUTHENTICATED,
            "SESSION_REVOKED",
        )
        await expect_error(
            b.LogoutAll(auth_pb2.LogoutAllRequest(), metadata=bearer(device.access_token)),
            grpc.StatusCode.UNAUTHENTICATED,
            "SESSION_REVOKED",
        )


async def _generation(deployment, session_id: str) -> int:
    connection = await asyncpg.connect(deployment.database.dsn)
    try:
        return await connection.fetchval("SELECT generation FROM sessions WHERE id = $1", session_id)
    finally:
        await connection.close()


async def test_concurrent_refreshes_of_one_token_on_both_replicas_rotate_once(stubs, email, deployment):
    a, b = stubs
    pair = await a.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD))
    request = auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)
    answers = await asyncio.gather(*(stub.Refresh(request) for _ in range(10) for stub in (a, b)))
    # Inside the grace window every loser is handed the winner's child: one rotation, one child.
    assert len({answer.refresh_token for answer in answers}) == 1
    child = answers[0].refresh_token
    assert child != pair.refresh_token
    assert await _generation(deployment, pair.session_id) == 1
    # The child is the session's current token: it rotates once more, and then it is spent.
    grandchild = await b.Refresh(auth_pb2.RefreshRequest(refresh_token=child))
    assert grandchild.session_id == pair.session_id
    assert grandchild.refresh_token not in {child, pair.refresh_token}
