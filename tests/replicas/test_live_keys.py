"""Signing keys changed under two running replicas with the `authsvc keys` command, as an operator would.

`keys rotate` while both replicas serve traffic: no call fails, both publish the new kid before any token
carries it, and after the activation delay both sign with it. `keys revoke`: within a reload both stop
publishing the key and refuse its tokens (logging the kid), while tokens of the remaining key keep working.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from tests.replicas.conftest import Deployment, deploy
from tests.status import expect_error

pytestmark = pytest.mark.slow

T = TypeVar("T")

PASSWORD = "correct horse battery"
KEYS_RELOAD_SECONDS = 0.5
ACTIVATION_DELAY_SECONDS = 4
TRAFFIC_SECONDS = 20  # the traffic loops stop by themselves after this, whatever happens
USERS = 3  # concurrent user loops
POLL_SECONDS = 0.05
REVOKED_WITHIN_SECONDS = 5  # the reload interval, with a generous margin
CLI_SECONDS = 30
REVOKED_KEY_REFUSED = "token refused: signed with revoked key"
Stubs: TypeAlias = "list[auth_pb2_grpc.AuthServiceAsyncStub]"  # the async stub exists only in the .pyi


@pytest.fixture
def live_keys(postgres_admin_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """Two fresh replicas (one first key) that re-read the keys directory every half second and sign with
    a new key four seconds after it was added."""
    with deploy(
        postgres_admin_url,
        tmp_path,
        keys_reload_seconds=str(KEYS_RELOAD_SECONDS),
        key_activation_delay_seconds=str(ACTIVATION_DELAY_SECONDS),
    ) as running:
        yield running


@pytest.fixture
async def stubs(live_keys: Deployment) -> AsyncIterator[Stubs]:
    channels = [grpc.aio.insecure_channel(replica.target) for replica in live_keys.replicas]
    try:
        yield [auth_pb2_grpc.AuthServiceStub(channel) for channel in channels]
    finally:
        for channel in channels:
            await channel.close(None)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def header_kid(access_token: str) -> str:
    """The `kid` of an access token's JWS header (checking it is the documented header)."""
    encoded, _, _ = access_token.partition(".")
    header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    assert header["alg"] == "EdDSA" and header["typ"] == "at+jwt", header
    kid = header["kid"]
    assert isinstance(kid, str)
    return kid


async def authsvc(deployment: Deployment, *args: str) -> str:
    """Run the `authsvc` console script with the replicas' environment; return what it printed."""
    command = Path(sys.executable).with_name("authsvc")
    assert command.is_file(), f"no console script at {command}"
    process = await asyncio.create_subprocess_exec(
        str(command),
        *args,
        env=deployment.environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CLI_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, f"authsvc {' '.join(args)} exited {process.returncode}: {err.decode()}"
    return out.decode()


def printed_kid(pattern: str, output: str) -> str:
    found = re.search(pattern, output)
    assert found is not None, f"{pattern!r} not in {output!r}"
    return found.group(1)


async def published(stub: auth_pb2_grpc.AuthServiceAsyncStub) -> set[str]:
    answer = await stub.GetJwks(auth_pb2.GetJwksRequest())
    return {key.kid for key in answer.keys}


async def poll(what: str, seconds: float, check: Callable[[], Awaitable[T | None]]) -> T:
    """Call `check` until it returns something other than None; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:g} s: {what}")
        await asyncio.sleep(POLL_SECONDS)


async def register(stub: auth_pb2_grpc.AuthServiceAsyncStub) -> str:
    email = f"{time.monotonic_ns():x}@example.com"
    await stub.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD))
    return email


@dataclass
class Issued:
    """One access token a replica handed out."""

    kid: str
    replica: int
    sent: float  # monotonic time the call went out
    received: float  # and its answer came back


@dataclass
class Traffic:
    """Logins, refreshes and authenticated calls across both replicas, and what they saw.

    Every failed call is kept in `failures`; every access token issued in `issued`; each replica's JWKS
    is polled and the first time each kid showed in it kept in `first_published`.
    """

    stubs: Stubs
    deadline: float
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    issued: list[Issued] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    succeeded: dict[tuple[str, int], int] = field(default_factory=dict)
    first_published: list[dict[str, float]] = field(default_factory=lambda: [{}, {}])
    unpublished: list[str] = field(default_factory=list)  # a kid that left a JWKS it had been in
    # When a token issued before the rotation last worked.
    old_token_worked: float = 0.0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def running(self) -> bool:
        return not self.stop.is_set() and time.monotonic() < self.deadline

    async def call(self, name: str, replica: int, call: Awaitable[T]) -> T | None:
        try:
            answer = await call
        except grpc.aio.AioRpcError as error:
            self.failures.append(f"{name} on replica {replica}: {error.code().name} {error.details()}")
            return None
        self.succeeded[name, replica] = self.succeeded.get((name, replica), 0) + 1
        return answer

    async def issue(
        self, name: str, replica: int, call: Awaitable[auth_pb2.TokenPair]
    ) -> auth_pb2.TokenPair | None:
        sent = time.monotonic()
        pair = await self.call(name, replica, call)
        if pair is not None:
            self.issued.append(Issued(header_kid(pair.access_token), replica, sent, time.monotonic()))
        return pair

    async def user(self, index: int, email: str) -> None:
        """Log in on one replica, refresh on the other, list sessions with both access tokens on
        alternate replicas and with a token issued before the rotation, log out; then swap replicas."""
        login = auth_pb2.LoginRequest(email=email, password=PASSWORD)
        kept = await self.issue("Login", 0, self.stubs[0].Login(login))
        turn = index
        while kept is not None and self.running():
            first, second = turn % 2, (turn + 1) % 2
            turn += 1
            pair = await self.issue("Login", first, self.stubs[first].Login(login))
            if pair is None:
                continue
            refresh = auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)
            renewed = await self.issue("Refresh", second, self.stubs[second].Refresh(refresh))
            listing = auth_pb2.ListSessionsRequest()
            await self.call(
                "ListSessions",
                second,
                self.stubs[second].ListSessions(listing, metadata=bearer(pair.access_token)),
            )
            if renewed is None:
                continue
            await self.call(
                "ListSessions",
                first,
                self.stubs[first].ListSessions(listing, metadata=bearer(renewed.access_token)),
            )
            old = await self.call(
                "ListSessions",
                second,
                self.stubs[second].ListSessions(listing, metadata=bearer(kept.access_token)),
            )
            if old is not None:
                self.old_token_worked = time.monotonic()
            # Logged out so that the session lists stay short.
            logout = auth_pb2.LogoutRequest(refresh_token=renewed.refresh_token)
            await self.call("Logout", first, self.stubs[first].Logout(logout))

    async def watch_jwks(self) -> None:
        while self.running():
            for replica, stub in enumerate(self.stubs):
                answer = await self.call("GetJwks", replica, stub.GetJwks(auth_pb2.GetJwksRequest()))
                if answer is None:
                    continue
                now = time.monotonic()
                kids = {key.kid for key in answer.keys}
                seen = self.first_published[replica]
                self.unpublished.extend(f"{kid} left replica {replica}'s JWKS" for kid in set(seen) - kids)
                for kid in kids:
                    seen.setdefault(kid, now)
            await asyncio.sleep(POLL_SECONDS)

    def start(self, emails: list[str]) -> None:
        self.tasks = [asyncio.create_task(self.user(index, email)) for index, email in enumerate(emails)]
        self.tasks.append(asyncio.create_task(self.watch_jwks()))

    async def until(self, what: str, condition: Callable[[], bool]) -> None:
        """Wait, while the traffic runs, until `condition` holds; fail when the loops end first."""
        while not condition():
            if not self.running() or any(task.done() for task in self.tasks):
                await self.finish()
                raise AssertionError(f"the traffic ended before {what}; failures: {self.failures[:5]}")
            await asyncio.sleep(POLL_SECONDS)

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)

    def signed_with(self, kid: str, replica: int) -> list[Issued]:
        return sorted(
            (token for token in self.issued if token.kid == kid and token.replica == replica),
            key=lambda token: token.received,
        )


async def test_a_key_rotated_under_traffic_is_published_by_both_replicas_before_either_signs_with_it(
    live_keys: Deployment, stubs: Stubs
) -> None:
    jwks = [await published(stub) for stub in stubs]
    assert len(jwks[0]) == 1 and jwks[0] == jwks[1], jwks
    (old_kid,) = jwks[0]
    traffic = Traffic(stubs, deadline=time.monotonic() + TRAFFIC_SECONDS)
    traffic.start([await register(stubs[index % 2]) for index in range(USERS)])
    try:
        await traffic.until(
            "both replicas issued tokens", lambda: {token.replica for token in traffic.issued} == {0, 1}
        )
        rotated = time.monotonic()  # no token can carry the new kid before the key exists
        output = await authsvc(live_keys, "keys", "rotate")
        new_kid = printed_kid(r"added signing key (\S+);", output)
        assert new_kid != old_kid
        # Well past the switch: each replica has signed with the new key a few times.
        await traffic.until(
            "both replicas signed with the new key",
            lambda: all(len(traffic.signed_with(new_kid, replica)) >= 5 for replica in (0, 1)),
        )
    finally:
        await traffic.finish()

    assert traffic.failures == []
    assert traffic.unpublished == []
    for name in ("Login", "Refresh", "ListSessions", "Logout", "GetJwks"):
        assert all(traffic.succeeded.get((name, replica), 0) > 0 for replica in (0, 1)), traffic.succeeded
    assert {token.kid for token in traffic.issued} == {old_kid, new_kid}
    # Published by both before any token carrying it came back.
    first_token = min(token.received for token in traffic.issued if token.kid == new_kid)
    for replica in (0, 1):
        assert traffic.first_published[replica][old_kid] < rotated
        assert traffic.first_published[replica][new_kid] < first_token, (replica, traffic.first_published)
    # Before the rotation both signed with the old key; once a replica signed with the new key, every call
    # sent to it afterwards was signed with the new key.
    for replica in (0, 1):
        assert [token for token in traffic.issued if token.replica == replica and token.received < rotated]
        assert all(token.kid == old_kid for token in traffic.issued if token.sent < rotated)
        switched = traffic.signed_with(new_kid, replica)[0].received
        later = [token for token in traffic.issued if token.replica == replica and token.sent > switched]
        assert later and all(token.kid == new_kid for token in later), (replica, later)
    # A token signed with the old key before the rotation still worked after both had switched.
    assert traffic.old_token_worked > max(
        traffic.signed_with(new_kid, replica)[0].received for replica in (0, 1)
    )


def log_records(deployment: Deployment, replica: int) -> list[dict[str, Any]]:
    records = []
    for line in deployment.replicas[replica].log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


async def test_a_revoked_key_is_dropped_by_both_replicas_and_its_tokens_refused_while_the_other_key_works(
    live_keys: Deployment, stubs: Stubs
) -> None:
    email = await register(stubs[0])
    login = auth_pb2.LoginRequest(email=email, password=PASSWORD)
    kept = await stubs[0].Login(login)
    old_kid = header_kid(kept.access_token)
    new_kid = printed_kid(r"added signing key (\S+);", await authsvc(live_keys, "keys", "rotate"))

    async def signed_with_new_key(replica: int) -> auth_pb2.TokenPair | None:
        pair = await stubs[replica].Login(login)
        return pair if header_kid(pair.access_token) == new_kid else None

    # The new key is the one signing on both replicas when it is revoked (as after a leak).
    doomed = [
        await poll(
            f"replica {replica} signs with {new_kid}",
            ACTIVATION_DELAY_SECONDS + 10,
            partial(signed_with_new_key, replica),
        )
        for replica in (0, 1)
    ]
    output = await authsvc(live_keys, "keys", "revoke", new_kid)
    assert printed_kid(r"revoked signing key (\S+);", output) == new_kid
    replacement = printed_kid(r"added signing key (\S+) to replace it", output)
    assert replacement not in {old_kid, new_kid}

    async def dropped(replica: int) -> set[str] | None:
        kids = await published(stubs[replica])
        return kids if new_kid not in kids else None

    for replica in (0, 1):
        kids = await poll(
            f"replica {replica} stops publishing {new_kid}",
            REVOKED_WITHIN_SECONDS,
            partial(dropped, replica),
        )
        assert kids == {old_kid, replacement}

    listing = auth_pb2.ListSessionsRequest()
    for stub in stubs:
        for pair in doomed:
            await expect_error(
                stub.ListSessions(listing, metadata=bearer(pair.access_token)),
                grpc.StatusCode.UNAUTHENTICATED,
                "TOKEN_INVALID",
            )
    # The old key's tokens keep working, and it signs again: the replacement is not yet past its delay.
    for replica, stub in enumerate(stubs):
        await stub.ListSessions(listing, metadata=bearer(kept.access_token))
        fresh = await stub.Login(login)
        assert header_kid(fresh.access_token) == old_kid
        await stubs[1 - replica].ListSessions(listing, metadata=bearer(fresh.access_token))
        # A client whose access token was refused gets a working one by refreshing: sessions survive.
        renewed = await stub.Refresh(auth_pb2.RefreshRequest(refresh_token=doomed[replica].refresh_token))
        assert header_kid(renewed.access_token) == old_kid
        await stubs[1 - replica].ListSessions(listing, metadata=bearer(renewed.access_token))

    # Each replica named the revoked kid when it refused its tokens.
    for replica in (0, 1):
        refused = [
            record
            for record in log_records(live_keys, replica)
            if record.get("message") == REVOKED_KEY_REFUSED and record.get("kid") == new_kid
        ]
        assert len(refused) == len(doomed), (replica, live_keys.replicas[replica].log.read_text()[-2000:])
