"""Login throttling: per account at one client address and per address, shared by replicas, never costing
bcrypt. How guesses from many addresses are held, and why they cannot lock the owner out, is in
test_throttling_owner.py; Register throttling in test_register_throttling.py."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import grpc
import pytest
import redis.asyncio as redis
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authsvc.app.start import start_server
from authsvc.settings import Settings
from tests.addresses import ClientsAt, loopback
from tests.conftest import PASSWORD, ManualClock
from tests.ports import free_port
from tests.status import expect_error

REDIS_URL = "redis://127.0.0.1:6379/0"
WRONG = "wrong password"


def retry_delay(error: grpc.aio.AioRpcError) -> int | None:
    metadata: Any = error.trailing_metadata() or ()
    for key, value in metadata:
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                retry = error_details_pb2.RetryInfo()
                if detail.Unpack(retry):
                    return retry.retry_delay.seconds
    return None


async def attempt(stub, email: str, password: str, address: str | None = None) -> str:
    """One login; the outcome as a word: OK, or the reason of the error."""
    metadata = (("x-forwarded-for", address),) if address else ()
    try:
        await stub.Login(auth_pb2.LoginRequest(email=email, password=password), metadata=metadata)
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return "THROTTLED"
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error
        return "DENIED"
    return "OK"


async def test_the_sixth_attempt_on_an_account_from_one_address_is_throttled_with_a_retry_delay(
    auth_server, register
):
    await register()
    outcomes = [await attempt(auth_server.stub, "ada@example.com", WRONG) for _ in range(5)]
    assert outcomes == ["DENIED"] * 5
    auth_server.clock.advance(60)
    # Even the right password is refused now from this address: the account is throttled here, not the
    # guess (other addresses are not: test_throttling_owner.py).
    call = auth_server.stub.Login(auth_pb2.LoginRequest(email="ada@example.com", password=PASSWORD))
    error = await expect_error(call, grpc.StatusCode.RESOURCE_EXHAUSTED, "THROTTLED")
    assert retry_delay(error) == 240  # the window of 300 s began at the first failure


async def test_unknown_accounts_are_throttled_alike(auth_server):
    outcomes = [await attempt(auth_server.stub, "nobody@example.com", WRONG) for _ in range(6)]
    assert outcomes == ["DENIED"] * 5 + ["THROTTLED"]


async def test_the_account_is_free_again_when_the_window_ends(auth_server, register):
    await register()
    for _ in range(5):
        await attempt(auth_server.stub, "ada@example.com", WRONG)
    auth_server.clock.advance(299)
    assert await attempt(auth_server.stub, "ada@example.com", PASSWORD) == "THROTTLED"
    auth_server.clock.advance(1)
    assert await attempt(auth_server.stub, "ada@example.com", PASSWORD) == "OK"


async def test_refused_attempts_do_not_extend_the_window(auth_server, register):
    await register()
    for _ in range(5):
        await attempt(auth_server.stub, "ada@example.com", WRONG)
    # A flood during the window ...
    for _ in range(4):
        auth_server.clock.advance(70)
        assert await attempt(auth_server.stub, "ada@example.com", WRONG) == "THROTTLED"
    # ... still lets the owner in once the window that began with the first failure ends.
    auth_server.clock.advance(20)
    assert await attempt(auth_server.stub, "ada@example.com", PASSWORD) == "OK"


async def test_a_successful_login_resets_the_account_count(auth_server, register):
    # The count of the account at this address (the one that throttles a single address).
    await register()
    for _ in range(4):
        await attempt(auth_server.stub, "ada@example.com", WRONG)
    assert await attempt(auth_server.stub, "ada@example.com", PASSWORD) == "OK"
    outcomes = [await attempt(auth_server.stub, "ada@example.com", WRONG) for _ in range(6)]
    assert outcomes == ["DENIED"] * 5 + ["THROTTLED"]


async def test_a_throttled_attempt_costs_no_bcrypt_work(auth_server, register, monkeypatch):
    await register()
    hasher = auth_server.running.hasher
    checks = 0
    verify = hasher.verify

    async def counting_verify(password, password_hash):
        nonlocal checks
        checks += 1
        return await verify(password, password_hash)

    monkeypatch.setattr(hasher, "verify", counting_verify)
    for _ in range(5):
        await attempt(auth_server.stub, "ada@example.com", WRONG)
    assert checks == 5
    outcomes = [await attempt(auth_server.stub, "ada@example.com", PASSWORD) for _ in range(20)]
    assert outcomes == ["THROTTLED"] * 20
    assert checks == 5


async def test_concurrent_guesses_cannot_slip_past_the_limit_together(auth_server, register):
    await register()
    outcomes = await asyncio.gather(*(attempt(auth_server.stub, "ada@example.com", WRONG) for _ in range(30)))
    assert sorted(outcomes) == ["DENIED"] * 5 + ["THROTTLED"] * 25


@pytest.mark.parametrize("server_settings", [{"login_max_failures_per_address": 8}], indirect=True)
async def test_one_address_is_throttled_across_accounts_and_others_are_not(auth_server):
    async with ClientsAt(auth_server.target) as clients:
        guesser, other = await clients.stub(loopback(9)), await clients.stub(loopback(7))
        outcomes = [await attempt(guesser, f"user{i}@example.com", WRONG) for i in range(9)]
        assert outcomes == ["DENIED"] * 8 + ["THROTTLED"]
        assert await attempt(guesser, "fresh@example.com", WRONG) == "THROTTLED"
        assert await attempt(other, "fresh@example.com", WRONG) == "DENIED"


@pytest.mark.parametrize(
    "server_settings",
    [{"login_max_failures_per_address": 8, "trusted_proxies": (ipaddress.ip_network("10.0.0.0/8"),)}],
    indirect=True,
)
async def test_an_address_the_client_writes_itself_is_not_believed(auth_server):
    # This client is not a trusted proxy: each forged x-forwarded-for is ignored, so all nine attempts
    # count against its own address and rotating the header does not escape the limit.
    stub = auth_server.stub
    outcomes = [await attempt(stub, f"user{i}@example.com", WRONG, f"203.0.113.{i}") for i in range(9)]
    assert outcomes == ["DENIED"] * 8 + ["THROTTLED"]


@pytest.fixture(params=["sql", "redis"])
async def shared_settings(request, server_settings) -> AsyncIterator[Settings]:
    """Settings for replicas that share their throttling state: one SQLite file, or one Redis."""
    if request.param == "sql":
        yield server_settings
        return
    prefix = f"authsvc-test:{uuid.uuid4().hex}:"
    yield replace(server_settings, redis_url=REDIS_URL, redis_key_prefix=prefix)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_replicas_share_the_limits_and_the_reset(shared_settings):
    clock = ManualClock()
    first = await start_server(shared_settings, clock=clock)
    second = await start_server(replace(shared_settings, migrate_on_start=False), clock=clock)
    channels = [grpc.aio.insecure_channel(running.target) for running in (first, second)]
    a, b = (auth_pb2_grpc.AuthServiceStub(channel) for channel in channels)
    try:
        await a.Register(auth_pb2.RegisterRequest(email="ada@example.com", password=PASSWORD))
        outcomes = [await attempt(stub, "ada@example.com", WRONG) for stub in (a, b, a, b, a)]
        assert outcomes == ["DENIED"] * 5
        assert await attempt(b, "ada@example.com", PASSWORD) == "THROTTLED"
        assert await attempt(a, "ada@example.com", PASSWORD) == "THROTTLED"
        clock.advance(300)
        assert await attempt(b, "ada@example.com", PASSWORD) == "OK"
        # The success on one replica reset the count that the other one reads.
        outcomes = [await attempt(stub, "ada@example.com", WRONG) for stub in (a, a, b, b, a, b)]
        assert outcomes == ["DENIED"] * 5 + ["THROTTLED"]
    finally:
        for channel in channels:
            await channel.close(None)
        await first.stop(1)
        await second.stop(1)


async def test_the_redis_counters_live_under_the_configured_prefix(server_settings):
    prefix = f"authsvc-test:{uuid.uuid4().hex}:"
    settings = replace(server_settings, redis_url=REDIS_URL, redis_key_prefix=prefix)
    running = await start_server(settings, clock=ManualClock())
    channel = grpc.aio.insecure_channel(running.target)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        await attempt(auth_pb2_grpc.AuthServiceStub(channel), "ada@example.com", WRONG)
        keys = sorted([key.decode() async for key in client.scan_iter(match=f"{prefix}*")])
        assert keys == [
            f"{prefix}login:account:ada@example.com",
            f"{prefix}login:address:127.0.0.1",
            f"{prefix}login:pair:127.0.0.1|ada@example.com",
        ]
        await client.delete(*keys)
    finally:
        await client.aclose()
        await channel.close(None)
        await running.stop(1)


def test_the_limits_are_configurable_and_the_redis_password_is_masked():
    assert (Settings().login_window_seconds, Settings().login_max_failures_per_account) == (300, 5)
    assert Settings().login_max_failures_per_address == 50
    defaults = Settings()
    assert (defaults.login_max_failures_across_addresses, defaults.login_across_addresses_window_seconds) == (
        100,
        3600,
    )
    assert defaults.login_known_address_seconds == 30 * 86_400
    settings = Settings.from_env(
        {
            "AUTHSVC_LOGIN_WINDOW_SECONDS": "60",
            "AUTHSVC_LOGIN_MAX_FAILURES_PER_ACCOUNT": "3",
            "AUTHSVC_LOGIN_MAX_FAILURES_PER_ADDRESS": "100",
            "AUTHSVC_LOGIN_MAX_FAILURES_ACROSS_ADDRESSES": "40",
            "AUTHSVC_LOGIN_ACROSS_ADDRESSES_WINDOW_SECONDS": "7200",
            "AUTHSVC_LOGIN_KNOWN_ADDRESS_SECONDS": "86400",
            "AUTHSVC_REDIS_URL": "redis://:hunter2@cache:6379/0",
        }
    )
    assert (settings.login_window_seconds, settings.login_max_failures_per_account) == (60, 3)
    assert settings.login_max_failures_per_address == 100
    assert (settings.login_max_failures_across_addresses, settings.login_across_addresses_window_seconds) == (
        40,
        7200,
    )
    assert settings.login_known_address_seconds == 86_400
    assert settings.describe()["redis_url"] == "redis://:***@cache:6379/0"


async def test_unreachable_counters_make_logins_unavailable_rather_than_unlimited(server_settings):
    # Registrations too: both are counted in the same store.
    settings = replace(server_settings, redis_url=f"redis://127.0.0.1:{free_port()}/0", db_timeout_seconds=2)
    running = await start_server(settings, clock=ManualClock())
    try:
        async with grpc.aio.insecure_channel(running.target) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            registering = stub.Register(auth_pb2.RegisterRequest(email="ada@example.com", password=PASSWORD))
            await expect_error(registering, grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE")
            logging_in = stub.Login(auth_pb2.LoginRequest(email="ada@example.com", password=PASSWORD))
            await expect_error(logging_in, grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE")
            # Health says so too, so that load balancers and the sidecar's /healthz stop sending logins.
            assert await overall_health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        await running.stop(1)


async def overall_health(channel: grpc.aio.Channel) -> int:
    answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
    return int(answer.status)


async def test_with_reachable_counters_in_redis_the_server_is_serving(shared_settings):
    running = await start_server(shared_settings, clock=ManualClock())
    try:
        async with grpc.aio.insecure_channel(running.target) as channel:
            assert await overall_health(channel) == health_pb2.HealthCheckResponse.SERVING
    finally:
        await running.stop(1)
