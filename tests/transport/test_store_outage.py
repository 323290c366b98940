"""A PostgreSQL outage, end to end: the database goes away under a running authsvc and comes back.

While it is gone every RPC that needs it answers UNAVAILABLE (reason STORE_UNAVAILABLE) within its
deadline (no hang, no INTERNAL) and health says NOT_SERVING; once it is back, the same authsvc process
serves again without a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authsvc.app.start import start_server
from authsvc.store import StoreUnavailable
from tests.conftest import PASSWORD, ManualClock, make_settings
from tests.postgres_server import TemporaryPostgres, temporary_postgres
from tests.status import expect_error

DEADLINE = 5.0  # seconds, the client's deadline on each RPC
STORE_TIMEOUT = 1.0  # AUTHSVC_DB_TIMEOUT_SECONDS
RECOVERY = 15.0  # seconds to see the health status change (the monitor pings every 2 s)

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]


@pytest.fixture
async def postgres() -> AsyncIterator[TemporaryPostgres]:
    server = temporary_postgres()
    try:
        server.create()
        await server.start()
        yield server
    finally:
        server.destroy()


@dataclass
class Client:
    stub: auth_pb2_grpc.AuthServiceAsyncStub
    health: health_pb2_grpc.HealthAsyncStub
    pair: auth_pb2.TokenPair

    async def health_is(self, status: int) -> bool:
        answer = await self.health.Check(health_pb2.HealthCheckRequest(), timeout=DEADLINE)
        return answer.status == status

    async def refresh_works(self) -> bool:
        """Refresh with the first login's token (never spent: every refresh in these tests fails)."""
        try:
            await self.stub.Refresh(
                auth_pb2.RefreshRequest(refresh_token=self.pair.refresh_token), timeout=DEADLINE
            )
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
            return False
        return True

    async def every_rpc_is_unavailable_within_the_deadline(self) -> None:
        started = time.monotonic()
        calls: list[Awaitable[Any]] = [
            self.stub.Register(
                auth_pb2.RegisterRequest(email="bob@example.com", password=PASSWORD), timeout=DEADLINE
            ),
            self.stub.Login(
                auth_pb2.LoginRequest(email="ada@example.com", password=PASSWORD), timeout=DEADLINE
            ),
            self.stub.Refresh(
                auth_pb2.RefreshRequest(refresh_token=self.pair.refresh_token), timeout=DEADLINE
            ),
            self.stub.Logout(auth_pb2.LogoutRequest(refresh_token=self.pair.refresh_token), timeout=DEADLINE),
            self.stub.LogoutAll(
                auth_pb2.LogoutAllRequest(),
                metadata=(("authorization", f"Bearer {self.pair.access_token}"),),
                timeout=DEADLINE,
            ),
        ]
        for call in calls:
            await expect_error(call, grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE")
        assert time.monotonic() - started < DEADLINE


@pytest.fixture
async def client(postgres, tmp_path) -> AsyncIterator[Client]:
    """authsvc in-process on the test's own PostgreSQL, with a user and one session."""
    settings = make_settings(tmp_path / "data", database_url=postgres.url, db_timeout_seconds=STORE_TIMEOUT)
    running = await start_server(settings, clock=ManualClock())
    channel = grpc.aio.insecure_channel(running.target)
    try:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        await stub.Register(auth_pb2.RegisterRequest(email="ada@example.com", password=PASSWORD))
        pair = await stub.Login(auth_pb2.LoginRequest(email="ada@example.com", password=PASSWORD))
        client = Client(stub, health_pb2_grpc.HealthStub(channel), pair)
        assert await client.health_is(health_pb2.HealthCheckResponse.SERVING)
        yield client
    finally:
        await channel.close(None)
        await running.stop(1)


async def _eventually(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not {what} after {seconds}s")


async def _recovers(client: Client) -> None:
    # Nothing failed half-way: the refresh token the failed calls presented is still current.
    await _eventually(client.refresh_works, RECOVERY, "refreshing again")
    await _eventually(
        lambda: client.health_is(health_pb2.HealthCheckResponse.SERVING), RECOVERY, "SERVING again"
    )
    await client.stub.Login(
        auth_pb2.LoginRequest(email="ada@example.com", password=PASSWORD), timeout=DEADLINE
    )


async def test_a_stopped_database_is_unavailable_and_its_restart_recovers_without_restarting(
    postgres, client
):
    await postgres.stop_immediately()
    await client.every_rpc_is_unavailable_within_the_deadline()
    await _eventually(
        lambda: client.health_is(health_pb2.HealthCheckResponse.NOT_SERVING), RECOVERY, "NOT_SERVING"
    )
    await postgres.start()
    await _recovers(client)


async def test_a_frozen_database_times_out_as_unavailable_and_recovers_when_it_thaws(postgres, client):
    """A database that accepts nothing and answers nothing (a network partition, a stalled host)."""
    postgres.freeze()
    try:
        await client.every_rpc_is_unavailable_within_the_deadline()
        await _eventually(
            lambda: client.health_is(health_pb2.HealthCheckResponse.NOT_SERVING), RECOVERY, "NOT_SERVING"
        )
    finally:
        postgres.thaw()
    await _recovers(client)


@pytest.mark.parametrize("migrate_on_start", [True, False], ids=["serve", "serve --no-migrate"])
async def test_starting_against_a_frozen_database_fails_in_time_instead_of_hanging(
    postgres, tmp_path, migrate_on_start
):
    settings = make_settings(
        tmp_path / "data",
        database_url=postgres.url,
        db_timeout_seconds=STORE_TIMEOUT,
        migrate_on_start=migrate_on_start,
    )
    postgres.freeze()
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await start_server(settings, clock=ManualClock())
        assert time.monotonic() - started < DEADLINE
    finally:
        postgres.thaw()
