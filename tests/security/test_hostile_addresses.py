"""Hostile client addresses never reach the database as they came: no input makes a call INTERNAL.

A forwarded address is normalised before use (tests/transport/test_client_info.py has the parsing); here
the values go through the real server on SQLite and PostgreSQL, and the store is checked on its own for a
value no transport would let through.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2

from authsvc.store import NewSession, Store, User
from authsvc.store.migrate import migrate
from authsvc.store.sql import open_store
from tests.addresses import as_gateway
from tests.conftest import PASSWORD

PEER = "127.0.0.1"  # every test channel's own address: what is recorded when a forwarded value is not usable

HOSTILE = [
    ("zone id of 60", "fe80::1%" + "z" * 60, "fe80::1"),
    ("zone id of 500", "fe80::1%" + "z" * 500, "fe80::1"),
    ("IPv4-mapped IPv6", "::ffff:203.0.113.9", "203.0.113.9"),
    ("uncompressed IPv6", "2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
    ("bracketed with port", "[2001:db8::7]:443", "2001:db8::7"),
    ("garbage", "not an address at all", PEER),
    ("500 characters", "1" * 500, PEER),
    ("IPv4 with a zone", "203.0.113.9%" + "z" * 100, PEER),
    ("many hops", ", ".join(["198.51.100.1"] * 300), "198.51.100.1"),
    ("HTTP token characters", "203.0.113.9!#$&'*+^_`|~", PEER),  # grpcio sends no control characters
]


def forwarded_for(value: str) -> tuple[tuple[str, str], ...]:
    """Metadata whose `x-forwarded-for` the server believes: it carries the gateway secret, as the REST
    gateway's calls do (a direct caller's own x-forwarded-for is never read: test_forwarded_addresses.py)."""
    return as_gateway(("x-forwarded-for", value))


@pytest.mark.parametrize(
    ("value", "recorded"), [(v, r) for _, v, r in HOSTILE], ids=[n for n, _, _ in HOSTILE]
)
async def test_a_hostile_forwarded_address_is_normalised_or_replaced_by_the_peer(
    auth_server, register, value, recorded
):
    await register()
    metadata = forwarded_for(value)
    stub = auth_server.stub
    # Login, a failed login (counted per address), Refresh and Logout all take the address.
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.Login(
            auth_pb2.LoginRequest(email="ada@example.com", password="wrong password"), metadata=metadata
        )
    assert failed.value.code() == grpc.StatusCode.UNAUTHENTICATED
    pair = await stub.Login(
        auth_pb2.LoginRequest(email="ada@example.com", password=PASSWORD), metadata=metadata
    )
    bearer = (("authorization", f"Bearer {pair.access_token}"),)
    (session,) = (await stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer)).sessions
    assert session.ip_address == recorded
    renewed = await stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token), metadata=metadata)
    await stub.Logout(auth_pb2.LogoutRequest(refresh_token=renewed.refresh_token), metadata=metadata)


async def test_registration_with_a_hostile_forwarded_address_is_not_internal(auth_server):
    for number, (_, value, _) in enumerate(HOSTILE):
        request = auth_pb2.RegisterRequest(email=f"user{number}@example.com", password=PASSWORD)
        try:
            await auth_server.stub.Register(request, metadata=forwarded_for(value))
        except grpc.aio.AioRpcError as error:  # a registration throttle may refuse; never INTERNAL
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    await migrate(database_url)
    opened = await open_store(database_url)
    try:
        yield opened
    finally:
        await opened.close()


async def test_the_store_drops_an_overlong_address_and_cuts_an_overlong_user_agent(store):
    now = datetime.now(UTC)
    user = User(str(uuid.uuid4()), "ada@example.com", "$2b$04$hash", "user", now)
    await store.create_user(user)
    session = NewSession(
        str(uuid.uuid4()), user.id, b"h" * 32, now, now + timedelta(days=1), "u" * 600, "f" * 500
    )
    created = await store.create_session(session)
    assert (created.ip_address, created.user_agent) == (None, "u" * 512)
    kept = await store.get_session(session.id)
    assert (kept.ip_address, kept.user_agent) == (None, "u" * 512)
