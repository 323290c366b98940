"""Register is throttled per client address and in all, before any bcrypt work (issue 15, item 1).

Each client here connects from its own loopback address (tests/addresses.py). Every test runs on SQLite
and PostgreSQL, with the attempt counters in the database and in Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2

from authsvc.settings import Settings
from tests.addresses import ClientsAt, loopback
from tests.conftest import PASSWORD, ServerHandle, make_settings
from tests.security.test_throttling import retry_delay
from tests.security.throttle_backends import BACKENDS, counters_in
from tests.status import expect_error


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


async def register_at(clients: ClientsAt, address: str, email: str, password: str = PASSWORD) -> str:
    """One registration; the outcome as a word: OK, or the reason of the error."""
    stub = await clients.stub(address)
    try:
        await stub.Register(auth_pb2.RegisterRequest(email=email, password=password))
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return "THROTTLED"
        assert error.code() in (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.INVALID_ARGUMENT), error
        return "TAKEN" if error.code() == grpc.StatusCode.ALREADY_EXISTS else "INVALID"
    return "OK"


@pytest.fixture
def hashes(auth_server: ServerHandle, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The passwords the server's hasher hashed, in order, from now on."""
    hasher = auth_server.running.hasher
    hashed: list[bytes] = []
    original = hasher.hash

    async def counting_hash(password: bytes) -> str:
        hashed.append(password)
        return await original(password)

    monkeypatch.setattr(hasher, "hash", counting_hash)
    return hashed


async def test_the_eleventh_registration_from_one_address_is_throttled_and_others_still_register(
    auth_server, clients
):
    address = loopback(2)
    # Taken emails count like new ones: the limit bounds existence checks too.
    outcomes = [await register_at(clients, address, f"user{i % 5}@example.com") for i in range(10)]
    assert outcomes == ["OK"] * 5 + ["TAKEN"] * 5
    call = (await clients.stub(address)).Register(
        auth_pb2.RegisterRequest(email="fresh@example.com", password=PASSWORD)
    )
    error = await expect_error(call, grpc.StatusCode.RESOURCE_EXHAUSTED, "THROTTLED")
    assert retry_delay(error) == 3600  # the window of an hour began at the first registration
    assert await register_at(clients, address, "user0@example.com") == "THROTTLED"  # taken looks the same
    assert await register_at(clients, loopback(3), "fresh@example.com") == "OK"
    auth_server.clock.advance(3600)
    assert await register_at(clients, address, "later@example.com") == "OK"


@pytest.mark.parametrize("overrides", [{"register_max_per_window": 3}])
async def test_registrations_from_all_addresses_stop_at_the_global_ceiling(auth_server, clients):
    outcomes = [await register_at(clients, loopback(n), f"user{n}@example.com") for n in range(2, 7)]
    assert outcomes == ["OK"] * 3 + ["THROTTLED"] * 2
    auth_server.clock.advance(3600)
    assert await register_at(clients, loopback(6), "user6@example.com") == "OK"


async def test_a_throttled_registration_costs_no_bcrypt_work(auth_server, clients, hashes):
    address = loopback(2)
    for i in range(10):
        await register_at(clients, address, f"user{i}@example.com")
    assert len(hashes) == 10
    outcomes = [await register_at(clients, address, f"more{i}@example.com") for i in range(20)]
    assert outcomes == ["THROTTLED"] * 20
    assert len(hashes) == 10


async def test_a_taken_email_costs_the_same_hash_as_a_new_one(auth_server, clients, hashes):
    assert await register_at(clients, loopback(2), "ada@example.com") == "OK"
    assert await register_at(clients, loopback(3), "ada@example.com") == "TAKEN"
    assert len(hashes) == 2


async def test_requests_refused_before_hashing_are_not_counted(auth_server, clients, hashes):
    address = loopback(2)
    invalid = [await register_at(clients, address, f"user{i}@example.com", "short") for i in range(20)]
    assert invalid == ["INVALID"] * 20
    assert [await register_at(clients, address, f"user{i}@example.com") for i in range(10)] == ["OK"] * 10
    assert len(hashes) == 10


def test_the_register_limits_are_configurable():
    assert (Settings().register_max_per_address, Settings().register_max_per_window) == (10, 1000)
    assert Settings().register_window_seconds == 3600
    settings = Settings.from_env(
        {
            "AUTHSVC_REGISTER_WINDOW_SECONDS": "60",
            "AUTHSVC_REGISTER_MAX_PER_ADDRESS": "3",
            "AUTHSVC_REGISTER_MAX_PER_WINDOW": "30",
        }
    )
    assert (settings.register_window_seconds, settings.register_max_per_address) == (60, 3)
    assert settings.register_max_per_window == 30
