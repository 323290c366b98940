"""PostgreSQL failures a deployment meets, seen through the store: all are StoreUnavailable, and the
store recovers by itself. (The full stop-and-start of a server is tests/transport/test_outage.py.)"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from authsvc.store import StoreUnavailable
from authsvc.store.sql import open_store
from tests.databases import PostgresDatabase, empty_database
from tests.store.conftest import new_user


@pytest.fixture
async def database(postgres_database: PostgresDatabase) -> AsyncIterator[PostgresDatabase]:
    await empty_database(postgres_database)
    yield postgres_database


@pytest.fixture
async def users_locked(database: PostgresDatabase) -> AsyncIterator[asyncpg.Connection]:
    """Another client holds an exclusive lock on `users`: every store call touching it blocks."""
    admin = await asyncpg.connect(database.dsn)
    transaction = admin.transaction()
    await transaction.start()
    await admin.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
    try:
        yield admin
    finally:
        await transaction.rollback()
        await admin.close()


async def _connections_of(admin: asyncpg.Connection, database: PostgresDatabase) -> int:
    # Statistics views are read once per transaction unless the snapshot is dropped.
    await admin.execute("SELECT pg_stat_clear_snapshot()")
    return await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", database.name
    )


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_refused_connection_is_store_unavailable():
    store = await open_store(
        f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/nothing", timeout_seconds=2
    )
    try:
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await store.close()


async def test_a_statement_that_outlives_the_timeout_is_store_unavailable_in_time(database, users_locked):
    store = await open_store(database.url, pool_size=2, timeout_seconds=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.get_user("someone")
        assert 0.4 < time.monotonic() - started < 2.0
    finally:
        await store.close()


async def test_the_pool_never_opens_more_than_its_size_and_every_waiter_times_out(database, users_locked):
    """Six callers, two connections: two block on the lock, the rest queue for the pool; every one of
    them gets StoreUnavailable within its timeout plus at most one pool wait."""
    store = await open_store(database.url, pool_size=2, timeout_seconds=0.5)
    try:
        started = time.monotonic()
        calls = [asyncio.ensure_future(store.get_user("someone")) for _ in range(6)]
        most = 0
        while not all(call.done() for call in calls):
            most = max(most, await _connections_of(users_locked, database))
            await asyncio.sleep(0.02)
        assert most == 2
        for call in calls:
            with pytest.raises(StoreUnavailable):
                await call
        assert time.monotonic() - started < 2.5
    finally:
        await store.close()


async def test_a_connection_killed_mid_query_is_store_unavailable_and_the_next_call_reconnects(database):
    store = await open_store(database.url, pool_size=2, timeout_seconds=5)
    admin = await asyncpg.connect(database.dsn)
    try:
        transaction = admin.transaction()
        await transaction.start()
        await admin.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        blocked = asyncio.ensure_future(store.get_user("someone"))
        killed = 0
        deadline = time.monotonic() + 3
        while not killed and time.monotonic() < deadline:
            # The server ends the backend that waits on the lock (an admin shutdown, SQLSTATE 57P01).
            await admin.execute("SELECT pg_stat_clear_snapshot()")
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = $1 AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
                database.name,
            )
            await asyncio.sleep(0.01)
        assert killed == 1
        with pytest.raises(StoreUnavailable):
            await blocked
        await transaction.rollback()
        user = new_user()
        await store.create_user(user)
        assert await store.get_user(user.id) == user
    finally:
        await admin.close()
        await store.close()
