"""PostgreSQL failures a deployment meets, seen through the store: all are StoreUnavailable, and the
store recovers by itself. (The full stop-and-start of a server is tests/transport/test_outage.py.)"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from authsvc.store import Rotation, SessionStanding, StoreUnavailable
from authsvc.store.migrate import migrate
from authsvc.store.sql import open_store
from tests.databases import PostgresDatabase, empty_database
from tests.postgres_server import temporary_postgres
from tests.store.conftest import DAY, T0, new_session, new_user


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
    """Six callers, two connections (one for the hot path's pool, one for SQLAlchemy's): two block on the
    lock, the rest queue for their pool; every one of them gets StoreUnavailable within its timeout plus
    at most one pool wait."""
    store = await open_store(database.url, pool_size=2, timeout_seconds=0.5)
    try:
        started = time.monotonic()
        cold = [asyncio.ensure_future(store.get_user("someone")) for _ in range(3)]
        hot = [asyncio.ensure_future(store.get_session("something")) for _ in range(3)]
        calls = cold + hot
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
        assert await _terminate_the_lock_waiter(admin, database.name) == 1
        with pytest.raises(StoreUnavailable):
            await blocked
        await transaction.rollback()
        user = new_user()
        await store.create_user(user)
        assert await store.get_user(user.id) == user
    finally:
        await admin.close()
        await store.close()


# -- the hot path's own asyncpg pool (hot_postgres.py) ----------------------------------------------------


def _hot_calls(store, session_id: str, user_id: str) -> list[Callable[[], Awaitable[object]]]:
    """One call of every hot-path method."""
    rotation = Rotation(session_id, 0, b"h" * 32, b"n" * 32, T0, T0 + DAY)
    return [
        lambda: store.get_session(session_id),
        lambda: store.session_standing(session_id, T0),
        lambda: store.list_sessions(user_id, T0),
        lambda: store.rotate_session(rotation),
        lambda: store.revoke_session(session_id, "logout", T0),
        lambda: store.revoke_session(session_id, "logout", T0, token_hash=b"h" * 32),
        lambda: store.revoke_all_sessions(user_id, "logout_all", T0),
    ]


async def test_every_hot_call_to_a_refused_port_is_store_unavailable():
    store = await open_store(
        f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/nothing", timeout_seconds=2
    )
    try:
        for call in _hot_calls(store, "some-session", "someone"):
            with pytest.raises(StoreUnavailable):
                await call()
    finally:
        await store.close()


async def test_a_hot_call_that_outlives_the_timeout_is_store_unavailable(database, users_locked):
    store = await open_store(database.url, pool_size=2, timeout_seconds=0.5)
    try:
        for call in _hot_calls(store, "some-session", "someone")[:2]:  # both read `users`, which is locked
            with pytest.raises(StoreUnavailable):
                await call()
    finally:
        await store.close()


async def test_a_hot_connection_killed_mid_query_is_store_unavailable_and_the_next_call_reconnects(database):
    store = await open_store(database.url, pool_size=2, timeout_seconds=5)
    admin = await asyncpg.connect(database.dsn)
    try:
        user = new_user()
        await store.create_user(user)
        opened = await store.create_session(new_session(user))
        transaction = admin.transaction()
        await transaction.start()
        await admin.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        blocked = asyncio.ensure_future(store.get_session(opened.id))
        assert await _terminate_the_lock_waiter(admin, database.name) == 1
        with pytest.raises(StoreUnavailable):
            await blocked
        await transaction.rollback()
        assert await store.get_session(opened.id) == opened
    finally:
        await admin.close()
        await store.close()


@pytest.mark.slow
async def test_after_a_database_restart_each_stale_hot_connection_fails_at_most_once_then_is_replaced():
    server = temporary_postgres()
    try:
        server.create()
        await server.start()
        await migrate(server.url)
        pool_size = 4  # two connections for the hot path
        store = await open_store(server.url, pool_size=pool_size, timeout_seconds=5)
        try:
            user = new_user()
            await store.create_user(user)
            opened = await store.create_session(new_session(user))
            # Two calls at once: the hot pool opens both of its connections.
            await asyncio.gather(*(store.get_session(opened.id) for _ in range(2)))
            await server.stop_immediately()
            await server.start()
            # asyncpg sees most cut connections close while they idle and replaces them unasked; one it
            # does not see fails its next call, and only that one.
            outcomes = []
            for _ in range(6):
                try:
                    outcomes.append(await store.get_session(opened.id) == opened)
                except StoreUnavailable:
                    outcomes.append(False)
            assert outcomes.count(False) <= 2
            assert outcomes[-4:] == [True] * 4
            assert await store.session_standing(opened.id, T0) == SessionStanding(user.id, False, False)
        finally:
            await store.close()
    finally:
        server.destroy()


async def _terminate_the_lock_waiter(admin: Any, database_name: str) -> int:
    """End the backend waiting on a lock in `database_name` (an admin shutdown, SQLSTATE 57P01), once it
    waits; return how many were ended."""
    killed = 0
    deadline = time.monotonic() + 3
    while not killed and time.monotonic() < deadline:
        await admin.execute("SELECT pg_stat_clear_snapshot()")
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = $1 AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
            database_name,
        )
        await asyncio.sleep(0.01)
    return int(killed)
