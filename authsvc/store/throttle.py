"""Attempt counters and marks: the store side of throttling, shared by every replica.

A counter is a fixed window per key (an account at an address, an address, ...): it starts at the
key's first attempt and lasts that key's `window`; inside it the attempts are counted. An attempt is
taken only while every one of its keys is under its limit, and taking it is atomic across replicas, so
concurrent attempts cannot slip past a limit together. A refused attempt changes no counter, so a
flood never extends a window.

A mark is a key remembered for a while (a known account and address pair); it counts nothing.

Two implementations: `SqlAttemptStore` (the default, in the service's own database, table
`login_attempts`, counters and marks alike) and `RedisAttemptStore` (throttle_redis.py, when
AUTHSVC_REDIS_URL is set).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from sqlalchemy import Connection, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from authsvc.store.runners import Runner
from authsvc.store.schema import login_attempts


@dataclass(frozen=True)
class AttemptLimit:
    """At most `limit` attempts per `window` for `key`."""

    key: str
    limit: int
    window: timedelta


class AttemptStore(Protocol):
    """Atomic per-key attempt counters, and marks. Times are UTC and come from the caller's clock."""

    async def create_attempt(self, limits: Sequence[AttemptLimit], now: datetime) -> datetime | None:
        """Take one attempt on every key at once, or on none.

        A key whose window has ended (or that has none) starts a new one at `now` lasting its `window`.
        When every key is under its limit, each count goes up by one and the answer is None. Otherwise
        nothing is counted and the answer is when the last of the full windows ends (retry then).
        Raise StoreUnavailable when the counters cannot be reached.
        """

    async def delete_attempt(self, keys: Sequence[str], now: datetime) -> None:
        """Give back one attempt of each key's current window (never below zero)."""

    async def delete_attempts(self, key: str) -> None:
        """Forget `key`'s window and count."""

    async def create_mark(self, key: str, now: datetime, lifetime: timedelta) -> None:
        """Remember `key` until `now + lifetime` (replacing the end it had)."""

    async def has_mark(self, key: str, now: datetime) -> bool:
        """Whether `key` is remembered past `now`."""

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the counters can be reached (the health check asks)."""

    async def close(self) -> None: ...


# -- the SQL implementation ------------------------------------------------------------------------------


def _upsert(dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise ValueError(f"login attempt counters do not support {dialect}")


def _create_attempt(connection: Connection, limits: Sequence[AttemptLimit], now: datetime) -> datetime | None:
    insert = _upsert(connection.dialect.name)
    table = login_attempts
    refused_until: datetime | None = None
    # Sorted, so that two transactions lock the same rows in the same order (no deadlock on PostgreSQL).
    for limit in sorted(limits, key=lambda item: item.key):
        ends = now + limit.window
        statement = insert(table).values(subject=limit.key, attempts=0, window_ends_at=ends)
        expired = table.c.window_ends_at <= now
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.subject],
            set_={
                "attempts": case((expired, 0), else_=table.c.attempts),
                "window_ends_at": case((expired, ends), else_=table.c.window_ends_at),
            },
        ).returning(table.c.attempts, table.c.window_ends_at)
        row = connection.execute(statement).one()
        if row.attempts >= limit.limit and (refused_until is None or row.window_ends_at > refused_until):
            refused_until = row.window_ends_at
    if refused_until is not None:
        return refused_until
    connection.execute(
        update(table)
        .where(table.c.subject.in_([limit.key for limit in limits]))
        .values(attempts=table.c.attempts + 1)
    )
    return None


def _delete_attempt(connection: Connection, keys: Sequence[str], now: datetime) -> None:
    table = login_attempts
    connection.execute(
        update(table)
        .where(table.c.subject.in_(list(keys)), table.c.attempts > 0, table.c.window_ends_at > now)
        .values(attempts=table.c.attempts - 1)
    )


def _delete_attempts(connection: Connection, key: str) -> None:
    connection.execute(delete(login_attempts).where(login_attempts.c.subject == key))


def _create_mark(connection: Connection, key: str, until: datetime) -> None:
    statement = _upsert(connection.dialect.name)(login_attempts).values(
        subject=key, attempts=0, window_ends_at=until
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[login_attempts.c.subject], set_={"attempts": 0, "window_ends_at": until}
        )
    )


def _has_mark(connection: Connection, key: str, now: datetime) -> bool:
    table = login_attempts
    found = connection.execute(
        select(table.c.subject).where(table.c.subject == key, table.c.window_ends_at > now)
    ).first()
    return found is not None


def _delete_ended_windows(connection: Connection, now: datetime, batch_size: int) -> int:
    ended = (
        select(login_attempts.c.subject)
        .where(login_attempts.c.window_ends_at <= now)
        .limit(batch_size)
        .scalar_subquery()
    )
    return int(connection.execute(delete(login_attempts).where(login_attempts.c.subject.in_(ended))).rowcount)


class SqlAttemptStore:
    """`AttemptStore` in the service's database, on the store's own runner (one transaction per call)."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    async def create_attempt(self, limits: Sequence[AttemptLimit], now: datetime) -> datetime | None:
        return await self._runner.run(partial(_create_attempt, limits=limits, now=now))

    async def delete_attempt(self, keys: Sequence[str], now: datetime) -> None:
        if keys:
            await self._runner.run(partial(_delete_attempt, keys=keys, now=now))

    async def delete_attempts(self, key: str) -> None:
        await self._runner.run(partial(_delete_attempts, key=key))

    async def create_mark(self, key: str, now: datetime, lifetime: timedelta) -> None:
        await self._runner.run(partial(_create_mark, key=key, until=now + lifetime))

    async def has_mark(self, key: str, now: datetime) -> bool:
        return await self._runner.run(partial(_has_mark, key=key, now=now))

    async def delete_ended_windows(self, now: datetime, batch_size: int) -> int:
        """Delete up to `batch_size` counters whose window ended, and marks whose time ended, by `now`
        (they count nothing any more: every email or address ever tried leaves one); return how many."""
        return await self._runner.run(partial(_delete_ended_windows, now=now, batch_size=batch_size))

    async def ping(self) -> None:
        """The counters live in the store's own database, which its own ping already checks."""

    async def close(self) -> None:
        """Nothing to do: the runner belongs to the store, which closes it."""
