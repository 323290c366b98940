"""Shared fixtures: a real in-process grpc.aio server on an ephemeral port over a fresh store."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from authsvc.app.start import RunningServer, start_server
from authsvc.settings import Settings
from authsvc.store.migrate import migrate
from tests import databases
from tests.addresses import GATEWAY_SECRET_FILE


class ManualClock:
    """A clock the test moves by hand; starts at the real time so tokens look ordinary."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Test settings; the gateway secret is the run's one (tests/addresses.py), which test gateways read."""
    base = Settings(
        grpc_listen="127.0.0.1:0",
        data_dir=data_dir,
        bcrypt_rounds=4,
        shutdown_grace_seconds=1,
        gateway_secret_file=GATEWAY_SECRET_FILE,
    )
    return replace(base, **overrides) if overrides else base


@dataclass
class ServerHandle:
    """A running server, a channel and a stub to it, and the means to restart it on the same data."""

    settings: Settings
    clock: ManualClock
    running: RunningServer
    channel: grpc.aio.Channel
    stub: auth_pb2_grpc.AuthServiceAsyncStub

    @property
    def target(self) -> str:
        return self.running.target

    async def restart(self, **overrides: Any) -> None:
        await self.channel.close(None)
        await self.running.stop(1)
        settings = replace(self.settings, **overrides) if overrides else self.settings
        self.settings = settings
        self.running = await start_server(settings, clock=self.clock)
        self.channel = grpc.aio.insecure_channel(self.running.target)
        self.stub = auth_pb2_grpc.AuthServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close(None)
        await self.running.stop(1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """Where the test PostgreSQL server is (AUTHSVC_TEST_POSTGRES_URL, default the local one).

    Unreachable server: the PostgreSQL tests skip, except under CI=true, where they fail.
    """
    admin_url = os.environ.get("AUTHSVC_TEST_POSTGRES_URL", databases.DEFAULT_ADMIN_URL)
    try:
        databases.check_reachable_sync(admin_url)
    except databases.PostgresUnreachable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} (CI=true: PostgreSQL is required)")
        pytest.skip(str(exc))
    return admin_url


@pytest.fixture(scope="session")
def postgres_database(postgres_admin_url: str) -> Iterator[databases.PostgresDatabase]:
    """One migrated PostgreSQL database for the whole run, dropped at the end."""
    database = databases.create_database_sync(postgres_admin_url)
    try:
        yield database
    finally:
        databases.drop_database_sync(database)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One empty SQLite database migrated for the whole run; each test gets a copy, since migrating a new
    file costs about 40 ms, most of an in-process server's start."""
    path = tmp_path_factory.mktemp("template") / "authsvc.db"
    asyncio.run(migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(params=databases.SERVER_BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty, migrated store on each backend (SQLite: a copy of the run's template in
    the test's data directory)."""
    if request.param == "sqlite":
        data_dir = tmp_path / "data"
        data_dir.mkdir(mode=0o700)
        shutil.copy(request.getfixturevalue("sqlite_template"), data_dir / "authsvc.db")
        return f"sqlite+aiosqlite:///{data_dir / 'authsvc.db'}"
    database: databases.PostgresDatabase = request.getfixturevalue("postgres_database")
    databases.empty_database_sync(database)
    return database.url


@pytest.fixture
def server_settings(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Settings:
    """The server's settings; parametrize indirectly with a dict of overrides to change them."""
    overrides: dict[str, Any] = {"database_url": database_url, **getattr(request, "param", {})}
    return make_settings(tmp_path / "data", **overrides)


@pytest.fixture
async def auth_server(server_settings: Settings, clock: ManualClock) -> AsyncIterator[ServerHandle]:
    running = await start_server(server_settings, clock=clock)
    channel = grpc.aio.insecure_channel(running.target)
    handle = ServerHandle(server_settings, clock, running, channel, auth_pb2_grpc.AuthServiceStub(channel))
    try:
        yield handle
    finally:
        await handle.close()


@pytest.fixture
def stub(auth_server: ServerHandle) -> auth_pb2_grpc.AuthServiceAsyncStub:
    return auth_server.stub


PASSWORD = "correct horse battery"


@pytest.fixture
def register(auth_server: ServerHandle) -> Callable[..., Any]:
    """Register through the server's current stub (it changes when the test restarts the server)."""

    async def _register(
        email: str = "ada@example.com", password: str = PASSWORD
    ) -> auth_pb2.RegisterResponse:
        return await auth_server.stub.Register(auth_pb2.RegisterRequest(email=email, password=password))

    return _register


@pytest.fixture
def login(auth_server: ServerHandle) -> Callable[..., Any]:
    async def _login(
        email: str = "ada@example.com", password: str = PASSWORD, metadata: tuple[tuple[str, str], ...] = ()
    ) -> auth_pb2.TokenPair:
        return await auth_server.stub.Login(
            auth_pb2.LoginRequest(email=email, password=password), metadata=metadata
        )

    return _login
