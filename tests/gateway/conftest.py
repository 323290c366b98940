"""Gateway fixtures: a real gateway on port 0 over real HTTP, in front of a gRPC server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiohttp
import pytest

from authsvc.gateway import GatewaySettings, RunningGateway, start_gateway
from tests.addresses import GATEWAY_SECRET_FILE
from tests.gateway.fakes import FakeAuthServer, fake_auth_server

# Short, so the "server down" tests prove the gateway answers well inside it.
TEST_DEADLINE_SECONDS = 3.0

GatewayFactory = Callable[[str], AbstractAsyncContextManager[RunningGateway]]


@asynccontextmanager
async def running_gateway(
    target: str, deadline: float = TEST_DEADLINE_SECONDS, *, expose_internal: bool = False, **overrides: Any
) -> AsyncIterator[RunningGateway]:
    """A gateway on port 0 in front of `target`; it shows the test run's gateway secret, which servers from
    make_settings read, unless `gateway_secret_file` says otherwise."""
    settings = GatewaySettings(
        http_host="127.0.0.1",
        http_port=0,
        grpc_target=target,
        deadline_seconds=deadline,
        expose_internal=expose_internal,
        **{"gateway_secret_file": GATEWAY_SECRET_FILE, **overrides},
    )
    gateway = await start_gateway(settings)
    try:
        yield gateway
    finally:
        await gateway.stop()


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeAuthServer]:
    async with fake_auth_server() as server:
        yield server


@pytest.fixture
async def fake_gateway(fake_server: FakeAuthServer) -> AsyncIterator[RunningGateway]:
    async with running_gateway(fake_server.target) as gateway:
        yield gateway


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session
