"""Replicas that come and go under continuous traffic: no retry-safe call fails.

Two replicas on PostgreSQL serve users who each log in once, then refresh, list their sessions, introspect,
log out and log in again, in a loop, through (a) the REST gateway and (b) the Python client, both dialing
`ipv4:A,B` (round robin with health checks, authsvc_proto/retry.py). Meanwhile replica a is killed
(SIGKILL) and started again on its port, then replica b is stopped the graceful way (SIGTERM: NOT_SERVING,
a drain, then GOAWAY and its in-flight calls finished) and started again. The retry-safe calls (Refresh,
ListSessions, Introspect, Logout) all succeed; only Login or Register, which are never sent twice, may
fail when caught in flight on the killed replica: the test counts and prints them.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiohttp
import pytest
from authsvc_client import AsyncAuthClient, AuthServiceError

from authsvc.gateway import GatewaySettings, start_gateway
from tests.replicas.conftest import STOP_SECONDS, Deployment, Replica, deploy

pytestmark = pytest.mark.slow

T = TypeVar("T")

PASSWORD = "correct horse battery"
USERS = 16  # concurrent user loops, as in the measurement of issue 17
CALLS_PER_STEP = 300  # successful calls the traffic makes after a replica went, before the next step
STEP_SECONDS = 120  # a step that takes longer than this is stuck: fail instead of hanging
CALL_TIMEOUT = 10.0  # the deadline of one call; its retries happen within it
NEVER_SENT_TWICE = {"Login", "Register"}
# How a call caught in flight on a replica that went away fails: the server is gone, or it dropped a call
# it had not started. Any other failure is a bug, whatever the RPC.
IN_FLIGHT_FAILURES = {"UNAVAILABLE", "CANCELLED", "503", "499"}


class Failed(Exception):
    """A call failed: `code` is the gRPC status name, or the HTTP status through the gateway."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass
class Pair:
    access_token: str
    refresh_token: str


class Api(Protocol):
    async def register(self, email: str) -> None: ...
    async def login(self, email: str) -> Pair: ...
    async def refresh(self, refresh_token: str) -> Pair: ...
    async def list_sessions(self, access_token: str) -> int: ...
    async def introspect(self, access_token: str) -> bool: ...
    async def logout(self, refresh_token: str) -> None: ...


class RestApi:
    """The REST gateway's routes, over one aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self._session, self._base = session, base

    async def _call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self._session.request(method, self._base + path, json=body, headers=headers) as answer:
            if answer.status >= 400:
                raise Failed(str(answer.status), await answer.text())
            return await answer.json()

    async def register(self, email: str) -> None:
        await self._call("POST", "/api/v1/auth/register", {"email": email, "password": PASSWORD})

    async def login(self, email: str) -> Pair:
        answer = await self._call("POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})
        return Pair(answer["access_token"], answer["refresh_token"])

    async def refresh(self, refresh_token: str) -> Pair:
        answer = await self._call("POST", "/api/v1/auth/refresh", {"refresh_token": refresh_token})
        return Pair(answer["access_token"], answer["refresh_token"])

    async def list_sessions(self, access_token: str) -> int:
        return len((await self._call("GET", "/api/v1/auth/sessions", token=access_token))["sessions"])

    async def introspect(self, access_token: str) -> bool:
        return bool((await self._call("POST", "/api/v1/auth/introspect", {"token": access_token}))["active"])

    async def logout(self, refresh_token: str) -> None:
        await self._call("POST", "/api/v1/auth/logout", {"refresh_token": refresh_token})


class ClientApi:
    """The same calls through authsvc_client.AsyncAuthClient."""

    def __init__(self, client: AsyncAuthClient) -> None:
        self._client = client

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except AuthServiceError as error:
            raise Failed(error.code.name, str(error)) from error

    async def register(self, email: str) -> None:
        await self._call(self._client.register(email, PASSWORD))

    async def login(self, email: str) -> Pair:
        pair = await self._call(self._client.login(email, PASSWORD))
        return Pair(pair.access_token, pair.refresh_token)

    async def refresh(self, refresh_token: str) -> Pair:
        pair = await self._call(self._client.refresh(refresh_token))
        return Pair(pair.access_token, pair.refresh_token)

    async def list_sessions(self, access_token: str) -> int:
        return len(await self._call(self._client.list_sessions(access_token)))

    async def introspect(self, access_token: str) -> bool:
        return (await self._call(self._client.introspect(access_token))).active

    async def logout(self, refresh_token: str) -> None:
        await self._call(self._client.logout(refresh_token))


@dataclass
class Tally:
    """Every call's outcome, by RPC, and by the step of the scenario it happened in."""

    step: str = "both up"
    succeeded: Counter[str] = field(default_factory=Counter)
    failed: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (step, rpc, code)
    wrong: list[str] = field(default_factory=list)  # answers that are not what the service promises
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def call(self, rpc: str, call: Awaitable[T]) -> T | None:
        try:
            result = await call
        except Failed as failure:
            self.failed[(self.step, rpc, failure.code)] += 1
            if failure.code not in IN_FLIGHT_FAILURES:
                self.wrong.append(f"{rpc} during {self.step}: {failure}")
            return None
        self.succeeded[rpc] += 1
        async with self._changed:
            self._changed.notify_all()
        return result

    @property
    def total(self) -> int:
        return sum(self.succeeded.values())

    async def more(self, calls: int) -> None:
        """Wait until `calls` more calls have succeeded."""
        target = self.total + calls
        async with asyncio.timeout(STEP_SECONDS), self._changed:
            await self._changed.wait_for(lambda: self.total >= target)

    def failed_rpcs(self) -> set[str]:
        return {rpc for _, rpc, _ in self.failed}

    def report(self, path: str) -> str:
        failed = sorted(self.failed.items())
        failures = ", ".join(f"{rpc} {code} x{n} ({step})" for (step, rpc, code), n in failed)
        return (
            f"{path}: {self.total} calls succeeded ({dict(sorted(self.succeeded.items()))}); "
            f"failed: {sum(self.failed.values())} [{failures or 'none'}]"
        )


async def user(api: Api, email: str, tally: Tally, stop: asyncio.Event) -> None:
    """Log in, then refresh, list sessions, introspect, log out and log in again, until told to stop."""
    pair = None
    while not stop.is_set():
        if pair is None:
            pair = await tally.call("Login", api.login(email))
            continue
        pair = await tally.call("Refresh", api.refresh(pair.refresh_token))
        if pair is None:
            continue
        sessions = await tally.call("ListSessions", api.list_sessions(pair.access_token))
        if sessions is not None and sessions < 1:
            tally.wrong.append(f"ListSessions answered {sessions} sessions for a live one")
        active = await tally.call("Introspect", api.introspect(pair.access_token))
        if active is False:
            tally.wrong.append("Introspect answered inactive for a live session's access token")
        await tally.call("Logout", api.logout(pair.refresh_token))
        pair = None


async def until(condition: Callable[[], bool]) -> None:
    """Poll `condition` (it reads another process's state) until it holds, within STEP_SECONDS."""
    async with asyncio.timeout(STEP_SECONDS):
        while not await asyncio.to_thread(condition):
            await asyncio.sleep(0.1)


def took_traffic(replica: Replica) -> Callable[[], bool]:
    return lambda: replica.served("Refresh") > 0


async def come_and_go(deployment: Deployment, tally: Tally) -> None:
    """Kill replica a and start it again; then stop b gracefully and start it again; traffic flows."""
    a, b = deployment.replicas
    await until(took_traffic(a))
    await until(took_traffic(b))
    tally.step = "a killed"
    a.process.send_signal(signal.SIGKILL)
    await asyncio.to_thread(a.process.wait, STOP_SECONDS)
    await tally.more(CALLS_PER_STEP)
    tally.step = "a restarting"
    await asyncio.to_thread(deployment.relaunch, a)
    await until(took_traffic(a))  # the channel found it again
    tally.step = "b stopping (SIGTERM)"
    b.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(b.process.wait, STOP_SECONDS) == 0
    await tally.more(CALLS_PER_STEP)
    tally.step = "b restarting"
    await asyncio.to_thread(deployment.relaunch, b)
    await until(took_traffic(b))
    tally.step = "both up again"
    await tally.more(CALLS_PER_STEP)


async def run_scenario(api: Api, deployment: Deployment, path: str) -> Tally:
    tally = Tally()
    emails = [f"{uuid.uuid4().hex[:12]}@example.com" for _ in range(USERS)]
    for email in emails:
        await tally.call("Register", api.register(email))
    assert not tally.failed, tally.report(path)
    stop = asyncio.Event()
    users = [asyncio.create_task(user(api, email, tally, stop)) for email in emails]
    try:
        await come_and_go(deployment, tally)
    finally:
        stop.set()
        await asyncio.gather(*users)
    print(tally.report(path))
    return tally


def check(tally: Tally, path: str) -> None:
    assert not tally.wrong, tally.wrong
    assert tally.failed_rpcs() <= NEVER_SENT_TWICE, tally.report(path)
    assert {"Login", "Refresh", "ListSessions", "Introspect", "Logout"} <= set(tally.succeeded)


@pytest.fixture
def replicas(postgres_admin_url: str, tmp_path: Path) -> Iterator[Deployment]:
    with deploy(
        postgres_admin_url,
        tmp_path,
        gateway_secret_file=str(tmp_path / "gateway.secret"),  # one secret: the gateway is believed by both
        register_max_per_address="1000",
        drain_seconds="1",
    ) as running:
        yield running


def ipv4_target(deployment: Deployment) -> str:
    """gRPC's own syntax for several addresses: `ipv4:127.0.0.1:A,127.0.0.1:B`."""
    return "ipv4:" + ",".join(replica.target for replica in deployment.replicas)


@asynccontextmanager
async def rest_api(deployment: Deployment, tmp_path: Path) -> AsyncIterator[Api]:
    settings = GatewaySettings.from_env(
        {
            "AUTHSVC_HTTP_LISTEN": "127.0.0.1:0",
            "AUTHSVC_GRPC_TARGET": ipv4_target(deployment),
            "AUTHSVC_GATEWAY_DEADLINE_SECONDS": str(CALL_TIMEOUT),
            "AUTHSVC_GATEWAY_EXPOSE_INTERNAL": "true",  # Introspect
            "AUTHSVC_GATEWAY_SECRET_FILE": str(tmp_path / "gateway.secret"),
        }
    )
    gateway = await start_gateway(settings)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT * 2)) as session:
            yield RestApi(session, gateway.url)
    finally:
        await gateway.stop()


async def test_through_the_gateway_no_retry_safe_call_fails_while_replicas_come_and_go(replicas, tmp_path):
    async with rest_api(replicas, tmp_path) as api:
        tally = await run_scenario(api, replicas, "REST gateway")
    check(tally, "REST gateway")


async def test_through_the_python_client_no_retry_safe_call_fails_while_replicas_come_and_go(replicas):
    async with AsyncAuthClient(ipv4_target(replicas), timeout=CALL_TIMEOUT) as client:
        tally = await run_scenario(ClientApi(client), replicas, "Python client")
    check(tally, "Python client")
