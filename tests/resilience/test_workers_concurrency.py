"""The concurrency and rotation scenarios against a real `authsvc serve --workers 2`, on both stores.

Two processes write the same database, each with its own connections (on SQLite: two sqlite3 connections
on one WAL file): the clients must still be told the truth (tests/resilience/test_concurrency.py's mix and
check), and a refresh token raced over both workers must still rotate once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from tests.conftest import PASSWORD
from tests.resilience.test_concurrency import (
    CLIENTS,
    NO_ADDRESS_LIMIT,
    Told,
    assert_database_agrees,
    client,
)
from tests.status import expect_error
from tests.transport.test_refresh import generation_of
from tests.workers_process import WorkersProcess, start_workers_process

pytestmark = pytest.mark.slow

# Channels to one target share their connection (grpc's global subchannel pool), and the kernel picks a
# worker per connection: each channel here gets its own, so the clients spread over both workers.
OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)
SESSIONS = "SELECT id, user_id, token_hash, previous_token_hash, revoked_at FROM sessions"


@pytest.fixture
def two_workers(tmp_path: Path, database_url: str) -> Any:
    """`authsvc serve --workers 2` over the test's fresh store (SQLite in its data dir, or PostgreSQL)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700, exist_ok=True)
    limits = {name: str(value) for name, value in NO_ADDRESS_LIMIT.items()}
    # This checks what clients are told, not how fast: 200 registrations at once queue for the store's
    # connections, and on a busy machine the default 5 s wait answers some UNAVAILABLE (try again).
    limits["db_timeout_seconds"] = "30"
    server = start_workers_process(data_dir, tmp_path / "serve.log", database_url=database_url, **limits)
    yield server
    try:
        assert server.stop() == 0
    finally:
        server.kill()


async def read_database(database_url: str) -> tuple[dict[str, str], dict[str, tuple[Any, ...]]]:
    """Users (email -> id) and sessions (id -> user, token hash, previous hash, revoked_at) as stored."""
    if database_url.startswith("sqlite"):
        database = sqlite3.connect(database_url.partition(":///")[2])
        try:
            users = dict(database.execute("SELECT email, id FROM users"))
            sessions = {row[0]: tuple(row[1:]) for row in database.execute(SESSIONS)}
        finally:
            database.close()
        return users, sessions
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        users = {row["email"]: row["id"] for row in await connection.fetch("SELECT email, id FROM users")}
        sessions = {
            row[0]: (row[1], bytes(row[2]), row[3], row[4]) for row in await connection.fetch(SESSIONS)
        }
    finally:
        await connection.close()
    return users, sessions


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_two_hundred_concurrent_clients_over_two_workers_are_told_the_truth(
    two_workers, database_url, monkeypatch
):
    plain = grpc.aio.insecure_channel
    monkeypatch.setattr(grpc.aio, "insecure_channel", lambda target: plain(target, options=OWN_CONNECTION))
    everyone = [Told(f"user{number}@example.com") for number in range(CLIENTS)]
    await asyncio.wait_for(
        asyncio.gather(*(client(two_workers.target, n, told) for n, told in enumerate(everyone))), 300
    )
    assert [failure for told in everyone for failure in told.failures] == []
    assert len(two_workers.answered_by()) == 2  # both processes served the mix
    log = two_workers.log_path.read_text()
    assert "database is locked" not in log
    assert sum(len(told.revoked) for told in everyone) > 50

    users, sessions = await read_database(database_url)
    assert_database_agrees(everyone, users, sessions)


async def _refresh_on_own_channels(target: str, token: str, count: int) -> list[auth_pb2.TokenPair]:
    """`count` refreshes of one token at once, each on its own connection, so both workers get some."""
    channels = [grpc.aio.insecure_channel(target, options=OWN_CONNECTION) for _ in range(count)]
    try:
        calls = [
            auth_pb2_grpc.AuthServiceStub(channel).Refresh(auth_pb2.RefreshRequest(refresh_token=token))
            for channel in channels
        ]
        return list(await asyncio.gather(*calls))
    finally:
        await asyncio.gather(*(channel.close(None) for channel in channels))


async def _login(server: WorkersProcess, email: str) -> auth_pb2.TokenPair:
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        await stub.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD))
        return await stub.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD))


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_token_refreshed_at_once_on_both_workers_rotates_once(two_workers):
    pair = await _login(two_workers, "ada@example.com")
    answers = await _refresh_on_own_channels(two_workers.target, pair.refresh_token, 50)
    children = {answer.refresh_token for answer in answers}
    assert len(children) == 1
    child = children.pop()
    assert generation_of(child) == 1
    # The parent replayed inside the grace window, on other connections: the same child again.
    replays = await _refresh_on_own_channels(two_workers.target, pair.refresh_token, 10)
    assert {replay.refresh_token for replay in replays} == {child}
    assert len(two_workers.answered_by()) == 2  # the race was run on both processes
    # Rotated exactly once: the child is current and rotates to generation 2, on whichever worker.
    (grandchild,) = await _refresh_on_own_channels(two_workers.target, child, 1)
    assert generation_of(grandchild.refresh_token) == 2
    # The grandparent of the current token is reuse, and ends the session on both workers.
    async with grpc.aio.insecure_channel(two_workers.target) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        await expect_error(
            stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)),
            grpc.StatusCode.UNAUTHENTICATED,
            "REFRESH_TOKEN_REUSED",
        )
    for _ in range(6):
        async with grpc.aio.insecure_channel(two_workers.target, options=OWN_CONNECTION) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            await expect_error(
                stub.Refresh(auth_pb2.RefreshRequest(refresh_token=grandchild.refresh_token)),
                grpc.StatusCode.UNAUTHENTICATED,
                "SESSION_REVOKED",
            )
