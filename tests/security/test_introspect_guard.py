"""Who may introspect: loopback only without a secret; with one, wrong secrets throttled per address.

The decision itself is unit-tested on IntrospectionGuard; the throttling runs through real servers with
the counters in the database (SQLite, PostgreSQL) and in Redis, and callers at several loopback addresses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2

from authsvc.app.start import start_server
from authsvc.domain.audit import ClientInfo
from authsvc.domain.errors import IntrospectionLoopbackOnly, NotAuthenticated, Throttled
from authsvc.domain.introspection_guard import IntrospectionGuard, IntrospectionPolicy, is_local
from authsvc.settings import Settings
from tests.addresses import ClientsAt, loopback
from tests.conftest import ManualClock
from tests.security.test_throttling import retry_delay
from tests.security.throttle_backends import counters_in
from tests.status import expect_error

SECRET = "an-introspection-secret-of-40-characters"
RIGHT = (("authorization", f"Bearer {SECRET}"),)
WRONG = (("authorization", "Bearer not-the-secret-but-just-as-long-as-it"),)


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1", True),
        ("127.0.0.9", True),
        ("::1", True),
        (None, True),  # a Unix socket peer: only this host reaches it
        ("203.0.113.9", False),
        ("10.0.0.1", False),
        ("2001:db8::1", False),
        ("::", False),
        ("0.0.0.0", False),
        ("not an address", False),
    ],
)
def test_only_loopback_and_unix_socket_callers_are_local(address, local):
    assert is_local(address) is local


async def test_without_a_secret_only_local_callers_are_admitted():
    guard = IntrospectionGuard.unthrottled(None, ManualClock())
    for address in ("127.0.0.1", "::1", None):
        await guard.admit(None, ClientInfo(ip_address=address))
        await guard.admit("anything", ClientInfo(ip_address=address))
    for address in ("203.0.113.9", "2001:db8::1"):
        with pytest.raises(IntrospectionLoopbackOnly) as refused:
            await guard.admit(None, ClientInfo(ip_address=address))
        assert refused.value.reason == "INTROSPECTION_LOOPBACK_ONLY"


async def test_with_a_secret_every_address_presenting_it_is_admitted_and_no_other():
    guard = IntrospectionGuard.unthrottled(SECRET, ManualClock())
    for address in ("127.0.0.1", "203.0.113.9", None):
        await guard.admit(SECRET, ClientInfo(ip_address=address))
        for presented in (None, "", "wrong", SECRET[:-1], SECRET + "x"):
            with pytest.raises(NotAuthenticated):
                await guard.admit(presented, ClientInfo(ip_address=address))


class MemoryAttempts:
    """Just enough of AttemptStore for the guard, in memory (the real stores are tested through servers)."""

    def __init__(self) -> None:
        self.counters: dict[str, tuple[int, object]] = {}
        self.marks: dict[str, object] = {}
        self.writes = 0

    async def create_attempt(self, limits, now):
        (limit,) = limits
        count, ends = self.counters.get(limit.key, (0, now))
        if ends <= now:
            count, ends = 0, now + limit.window
        self.counters[limit.key] = (count, ends)
        if count >= limit.limit:
            return ends
        self.writes += 1
        self.counters[limit.key] = (count + 1, ends)
        return None

    async def delete_attempt(self, keys, now):
        for key in keys:
            count, ends = self.counters[key]
            self.counters[key] = (max(0, count - 1), ends)

    async def create_mark(self, key, now, lifetime):
        self.writes += 1
        self.marks[key] = now + lifetime

    async def has_mark(self, key, now):
        return key in self.marks and self.marks[key] > now

    async def delete_attempts(self, key):
        self.counters.pop(key, None)

    async def ping(self):
        pass

    async def close(self):
        pass


async def test_the_right_secret_costs_no_write_to_the_counters():
    attempts = MemoryAttempts()
    guard = IntrospectionGuard(
        SECRET, attempts, IntrospectionPolicy(timedelta(seconds=300), 3), ManualClock()
    )
    for _ in range(20):
        await guard.admit(SECRET, ClientInfo(ip_address="203.0.113.9"))
    assert attempts.writes == 0


async def test_the_limit_th_failure_blocks_the_address_for_the_rest_of_the_window():
    clock = ManualClock()
    attempts = MemoryAttempts()
    guard = IntrospectionGuard(SECRET, attempts, IntrospectionPolicy(timedelta(seconds=300), 3), clock)
    guesser, other = ClientInfo(ip_address="203.0.113.9"), ClientInfo(ip_address="198.51.100.7")
    for _ in range(3):
        with pytest.raises(NotAuthenticated):
            await guard.admit("wrong", guesser)
        clock.advance(10)
    with pytest.raises(Throttled) as throttled:
        await guard.admit(SECRET, guesser)
    assert throttled.value.retry_after_seconds == 270
    await guard.admit(SECRET, other)
    clock.advance(270)
    await guard.admit(SECRET, guesser)


# -- through real servers ------------------------------------------------------------------------------


@pytest.fixture(params=["sql", "redis"])
async def guarded_settings(request, server_settings) -> AsyncIterator[Settings]:
    settings = replace(server_settings, introspection_secret=SECRET, introspection_max_failures_per_address=3)
    async with counters_in(request.param, settings) as configured:
        yield configured


async def introspect(stub, metadata) -> str:
    """One Introspect of a junk token; the outcome as a word: INACTIVE, or the reason of the error."""
    try:
        answer = await stub.Introspect(auth_pb2.IntrospectRequest(token="junk"), metadata=metadata)
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return "THROTTLED"
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error
        return "DENIED"
    assert not answer.active
    return "INACTIVE"


async def test_wrong_secrets_are_throttled_per_address_on_every_store(guarded_settings):
    clock = ManualClock()
    running = await start_server(guarded_settings, clock=clock)
    try:
        async with ClientsAt(running.target) as clients:
            guesser, other = await clients.stub(loopback(9)), await clients.stub(loopback(7))
            outcomes = [await introspect(guesser, WRONG) for _ in range(3)]
            outcomes.append(await introspect(guesser, ()))
            assert outcomes == ["DENIED"] * 3 + ["THROTTLED"]
            # Blocked: even the right secret, from that address; the RetryInfo says when the window ends.
            clock.advance(100)
            call = guesser.Introspect(auth_pb2.IntrospectRequest(token="junk"), metadata=RIGHT)
            error = await expect_error(call, grpc.StatusCode.RESOURCE_EXHAUSTED, "THROTTLED")
            assert retry_delay(error) == 200
            # Another address is not held by the guesser's failures.
            assert await introspect(other, RIGHT) == "INACTIVE"
            assert await introspect(other, WRONG) == "DENIED"
            clock.advance(200)
            assert await introspect(guesser, RIGHT) == "INACTIVE"
    finally:
        await running.stop(1)


async def test_replicas_share_the_count_of_failures(guarded_settings):
    clock = ManualClock()
    first = await start_server(guarded_settings, clock=clock)
    second = await start_server(replace(guarded_settings, migrate_on_start=False), clock=clock)
    try:
        async with ClientsAt(first.target) as at_first, ClientsAt(second.target) as at_second:
            one, two = await at_first.stub(loopback(5)), await at_second.stub(loopback(5))
            assert [await introspect(one, WRONG), await introspect(two, WRONG)] == ["DENIED"] * 2
            assert await introspect(one, WRONG) == "DENIED"
            assert [await introspect(two, RIGHT), await introspect(one, RIGHT)] == ["THROTTLED"] * 2
    finally:
        await second.stop(1)
        await first.stop(1)
