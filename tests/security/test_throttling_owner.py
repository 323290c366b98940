"""Strangers cannot turn login throttling against an account's owner (issue 15, item 2).

Each client here connects from its own loopback address (tests/addresses.py), so the server sees it as
a different peer. Every test runs on SQLite and PostgreSQL, with the attempt counters in the database
and in Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2

from authsvc.app.start import start_server
from authsvc.settings import Settings
from tests.addresses import ClientsAt, loopback
from tests.conftest import PASSWORD, ServerHandle, make_settings
from tests.security.test_throttling import WRONG, attempt, retry_delay
from tests.security.throttle_backends import BACKENDS, counters_in
from tests.status import expect_error

ADA = "ada@example.com"
OWNER_HOME = loopback(2)  # where the owner logs in
OWNER_NEW = loopback(3)  # a device the owner never used


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Settings for one test; parametrize it directly to change them."""
    return {}


@pytest.fixture(params=BACKENDS)
async def server_settings(request, tmp_path, database_url, overrides) -> AsyncIterator[Settings]:
    settings = make_settings(tmp_path / "data", database_url=database_url, **overrides)
    async with counters_in(request.param, settings) as chosen:
        yield chosen


@pytest.fixture
async def clients(auth_server: ServerHandle) -> AsyncIterator[ClientsAt]:
    async with ClientsAt(auth_server.target) as opened:
        yield opened


async def login_at(clients: ClientsAt, address: str, password: str, email: str = ADA) -> str:
    return await attempt(await clients.stub(address), email, password)


async def test_five_guesses_from_one_address_lock_only_that_address_out_of_the_account(
    auth_server, register, clients
):
    await register()
    stranger = loopback(9)
    assert [await login_at(clients, stranger, WRONG) for _ in range(5)] == ["DENIED"] * 5
    # The stranger is stopped, even with the right password ...
    call = (await clients.stub(stranger)).Login(auth_pb2.LoginRequest(email=ADA, password=PASSWORD))
    error = await expect_error(call, grpc.StatusCode.RESOURCE_EXHAUSTED, "THROTTLED")
    assert retry_delay(error) == 300
    # ... while the owner, even on a device never used before, logs in at once.
    assert await login_at(clients, OWNER_NEW, PASSWORD) == "OK"
    assert await login_at(clients, OWNER_HOME, PASSWORD) == "OK"
    assert await login_at(clients, stranger, PASSWORD) == "THROTTLED"


async def test_one_address_guessing_one_account_is_still_throttled_even_where_the_owner_logged_in(
    auth_server, register, clients
):
    await register()
    assert await login_at(clients, OWNER_HOME, PASSWORD) == "OK"
    outcomes = await asyncio.gather(*(login_at(clients, OWNER_HOME, WRONG) for _ in range(30)))
    assert sorted(outcomes) == ["DENIED"] * 5 + ["THROTTLED"] * 25
    auth_server.clock.advance(300)
    assert await login_at(clients, OWNER_HOME, PASSWORD) == "OK"


async def test_twenty_guesses_from_twenty_addresses_do_not_lock_the_owner_out(auth_server, register, clients):
    await register()
    assert await login_at(clients, OWNER_HOME, PASSWORD) == "OK"
    assert [await login_at(clients, loopback(n), WRONG) for n in range(10, 30)] == ["DENIED"] * 20
    assert await login_at(clients, OWNER_HOME, PASSWORD) == "OK"
    assert await login_at(clients, OWNER_NEW, PASSWORD) == "OK"


async def test_at_the_default_limits_twenty_addresses_stop_after_a_hundred_guesses_and_the_owner_does_not(
    auth_server, register, clients
):
    await register()
    assert await login_at(clients, OWNER_HOME, PASSWORD) == "OK"
    for n in range(10, 30):
        assert [await login_at(clients, loopback(n), WRONG) for _ in range(5)] == ["DENIED"] * 5
    # 100 guesses from 20 addresses: each address is stopped, and so is the account, for strangers.
    assert await login_at(clients, loopback(10), PASSWORD) == "THROTTLED"
    assert await login_at(clients, loopback(30), WRONG) == "THROTTLED"
    assert await login_at(clients, OWNER_HOME, PASSWORD) == "OK"


@pytest.mark.parametrize("overrides", [{"login_max_failures_across_addresses": 10}])
async def test_past_the_account_wide_limit_the_owner_still_logs_in_where_they_did_before(
    auth_server, register, clients
):
    await register()
    assert await login_at(clients, OWNER_HOME, PASSWORD) == "OK"
    outcomes = [await login_at(clients, loopback(n), WRONG) for n in range(10, 30)]
    assert outcomes == ["DENIED"] * 10 + ["THROTTLED"] * 10
    # The owner's address is known for the account: the account-wide limit does not hold it ...
    assert await login_at(clients, OWNER_HOME, PASSWORD) == "OK"
    assert await login_at(clients, OWNER_HOME, PASSWORD) == "OK"
    # ... but a new device waits for the account-wide window (an hour from the first guess) to end,
    call = (await clients.stub(OWNER_NEW)).Login(auth_pb2.LoginRequest(email=ADA, password=PASSWORD))
    error = await expect_error(call, grpc.StatusCode.RESOURCE_EXHAUSTED, "THROTTLED")
    assert retry_delay(error) == 3600
    # and the owner's logins did not give the guessers their count back.
    assert await login_at(clients, loopback(40), WRONG) == "THROTTLED"
    auth_server.clock.advance(3600)
    assert await login_at(clients, OWNER_NEW, PASSWORD) == "OK"


@pytest.mark.parametrize("overrides", [{"login_max_failures_across_addresses": 10}])
async def test_unknown_accounts_are_throttled_across_addresses_alike(auth_server, clients):
    outcomes = [await login_at(clients, loopback(n), WRONG, "nobody@example.com") for n in range(10, 30)]
    assert outcomes == ["DENIED"] * 10 + ["THROTTLED"] * 10


@pytest.mark.parametrize(
    "overrides", [{"login_max_failures_across_addresses": 3, "login_known_address_seconds": 86_400}]
)
async def test_an_address_stays_known_for_its_lifetime_renewed_by_each_login(auth_server, register, clients):
    await register()
    assert await login_at(clients, OWNER_HOME, PASSWORD) == "OK"
    auth_server.clock.advance(80_000)
    assert await login_at(clients, OWNER_HOME, PASSWORD) == "OK"  # known for another day from now
    auth_server.clock.advance(80_000)
    assert [await login_at(clients, loopback(n), WRONG) for n in range(10, 14)] == ["DENIED"] * 3 + [
        "THROTTLED"
    ]
    assert await login_at(clients, OWNER_HOME, PASSWORD) == "OK"
    auth_server.clock.advance(86_400)  # a day without a login: the address is a stranger again
    assert [await login_at(clients, loopback(n), WRONG) for n in range(20, 24)] == ["DENIED"] * 3 + [
        "THROTTLED"
    ]
    assert await login_at(clients, OWNER_HOME, PASSWORD) == "THROTTLED"


@pytest.mark.parametrize("overrides", [{"login_max_failures_across_addresses": 10}])
async def test_replicas_share_the_known_addresses(auth_server, register, clients):
    await register()
    second = await start_server(
        replace(auth_server.settings, migrate_on_start=False), clock=auth_server.clock
    )
    try:
        async with ClientsAt(second.target) as elsewhere:
            assert await login_at(clients, OWNER_HOME, PASSWORD) == "OK"  # on the first replica
            outcomes = [await login_at(elsewhere, loopback(n), WRONG) for n in range(10, 21)]
            assert outcomes == ["DENIED"] * 10 + ["THROTTLED"]
            assert await login_at(elsewhere, OWNER_HOME, PASSWORD) == "OK"
            assert await login_at(elsewhere, OWNER_NEW, PASSWORD) == "THROTTLED"
    finally:
        await second.stop(1)
