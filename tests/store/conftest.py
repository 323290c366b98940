"""The `store` fixture: a fresh, empty, migrated store on every backend (see tests/databases.py).

A new backend joins the suite by adding its name to `databases.BACKENDS` and its URL to the
`database_url` fixture; every test in this folder then runs against it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from authsvc.store import NewSession, Store, User
from authsvc.store.migrate import migrate
from authsvc.store.sql import open_store

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    await migrate(database_url)
    opened = await open_store(database_url, pool_size=20, timeout_seconds=10)
    try:
        yield opened
    finally:
        await opened.close()


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
