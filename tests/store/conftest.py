"""The store conformance suite's backends: one factory per backend, one suite for all (Dex's pattern).

`store` hands each test a fresh, empty `Store` on every backend of `STORE_BACKENDS`; `counters` does the
same for the attempt counters (`AttemptStore`, `COUNTER_BACKENDS`). A new backend joins the suite by adding
its factory below: every test in this folder that takes the fixture then runs against it, and the backend
is done when they pass. PostgreSQL and Redis skip when unreachable, except under CI=true, where they fail.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from authsvc.store import NewSession, Store, User
from authsvc.store.memory import MemoryStore
from authsvc.store.migrate import migrate
from authsvc.store.sql import SqlStore, open_store
from authsvc.store.throttle import AttemptStore, SqlAttemptStore
from authsvc.store.throttle_memory import MemoryAttemptStore
from authsvc.store.throttle_redis import RedisAttemptStore
from tests import databases
from tests.security.throttle_backends import REDIS_URL, redis_prefix

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


# A factory takes the test's request (to reach the fixtures a backend needs, synchronously) and returns
# the opener of a fresh, empty instance, entered in the test's event loop.
Opener = Callable[[], AbstractAsyncContextManager[Any]]


@asynccontextmanager
async def _open_sql_store(url: str) -> AsyncIterator[SqlStore]:
    await migrate(url)
    opened = await open_store(url, pool_size=20, timeout_seconds=10)
    try:
        yield opened
    finally:
        await opened.close()


def _sqlite_store(request: pytest.FixtureRequest) -> Opener:
    path: Path = request.getfixturevalue("tmp_path") / "authsvc.db"
    shutil.copy(request.getfixturevalue("sqlite_template"), path)  # migrated once per run (tests/conftest.py)
    return partial(_open_sql_store, f"sqlite+aiosqlite:///{path}")


def _postgres_store(request: pytest.FixtureRequest) -> Opener:
    database: databases.PostgresDatabase = request.getfixturevalue("postgres_database")
    databases.empty_database_sync(database)
    return partial(_open_sql_store, database.url)


@asynccontextmanager
async def _open_memory_store() -> AsyncIterator[MemoryStore]:
    opened = MemoryStore()
    try:
        yield opened
    finally:
        await opened.close()


STORE_FACTORIES: dict[str, Callable[[pytest.FixtureRequest], Opener]] = {
    "sqlite": _sqlite_store,
    "postgresql": _postgres_store,
    "memory": lambda request: _open_memory_store,
}
STORE_BACKENDS = tuple(STORE_FACTORIES)


@pytest.fixture(params=STORE_BACKENDS)
def open_store_backend(request: pytest.FixtureRequest) -> Opener:
    return STORE_FACTORIES[request.param](request)


@pytest.fixture
async def store(open_store_backend: Opener) -> AsyncIterator[Store]:
    async with open_store_backend() as opened:
        yield opened


@asynccontextmanager
async def _open_sql_counters(open_sql_store: Opener) -> AsyncIterator[AttemptStore]:
    # The SQL counters live in the store's own database, on its runner, as in the server.
    async with open_sql_store() as opened:
        yield SqlAttemptStore(opened.runner)


@asynccontextmanager
async def _open_redis_counters() -> AsyncIterator[AttemptStore]:
    async with redis_prefix() as prefix:
        counters = RedisAttemptStore(redis.Redis.from_url(REDIS_URL), prefix)
        try:
            yield counters
        finally:
            await counters.close()


@asynccontextmanager
async def _open_memory_counters() -> AsyncIterator[AttemptStore]:
    counters = MemoryAttemptStore()
    try:
        yield counters
    finally:
        await counters.close()


COUNTER_FACTORIES: dict[str, Callable[[pytest.FixtureRequest], Opener]] = {
    "sqlite": lambda request: partial(_open_sql_counters, _sqlite_store(request)),
    "postgresql": lambda request: partial(_open_sql_counters, _postgres_store(request)),
    "redis": lambda request: _open_redis_counters,
    "memory": lambda request: _open_memory_counters,
}
COUNTER_BACKENDS = tuple(COUNTER_FACTORIES)


@pytest.fixture(params=COUNTER_BACKENDS)
def open_counters_backend(request: pytest.FixtureRequest) -> Opener:
    return COUNTER_FACTORIES[request.param](request)


@pytest.fixture
async def counters(open_counters_backend: Opener) -> AsyncIterator[AttemptStore]:
    async with open_counters_backend() as opened:
        yield opened


def new_user(email: str | None = None, created_at: datetime = T0) -> User:
    user_id = str(uuid.uuid4())
    return User(user_id, email or f"{user_id}@example.com", "$2b$04$hash", "user", created_at)


def new_session(
    user: User, created_at: datetime = T0, ttl: timedelta = 30 * DAY, **fields: Any
) -> NewSession:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "user_id": user.id,
        "token_hash": uuid.uuid4().bytes * 2,
        "created_at": created_at,
        "expires_at": created_at + ttl,
        "user_agent": "pytest",
        "ip_address": "127.0.0.1",
    }
    values.update(fields)
    return NewSession(**values)


@pytest.fixture
def user_with_sessions(store: Store) -> Callable[..., Any]:
    """Create a user and `count` sessions, one minute apart; return (user, [sessions oldest first])."""

    async def _make(count: int = 1, email: str | None = None, start: datetime = T0):
        user = new_user(email)
        await store.create_user(user)
        opened = [
            await store.create_session(new_session(user, created_at=start + timedelta(minutes=i)))
            for i in range(count)
        ]
        return user, opened

    return _make
