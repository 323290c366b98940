"""How store operations reach the database: each operation is one transaction run by a runner.

An operation is a plain function over a SQLAlchemy `Connection`, so the same Core statements serve
every dialect. Two runners execute them:

- `InlineSqliteRunner`: the event loop's thread runs each operation at once on the one SQLite
  connection and commits it before answering. SQLite allows one writer at a time anyway; this removes
  the pool checkout and the thread hops that cap SQLAlchemy over aiosqlite at about 700 operations/s
  here (SPEC.md). A group-commit writer thread was measured too and lost: under load its thread waits
  for the GIL, which the busy event loop hands over only every few milliseconds.
- `AsyncEngineRunner`: SQLAlchemy's asyncio engine (asyncpg for PostgreSQL), one pooled connection and
  one transaction per operation.

Driver errors are converted here, in one place per runner, to the store's errors.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from authsvc.store.interface import AlreadyExists, StoreError, StoreUnavailable

T = TypeVar("T")
Operation = Callable[[Connection], T]


# Most specific first: the first matching class decides.
_ERROR_TABLE: tuple[tuple[type[BaseException], type[StoreError], str], ...] = (
    (sa_exc.IntegrityError, AlreadyExists, "a unique value is taken"),
    (sa_exc.OperationalError, StoreUnavailable, "the database is unavailable"),
    (sqlite3.OperationalError, StoreUnavailable, "the database is unavailable"),
    (sa_exc.InterfaceError, StoreUnavailable, "the database connection failed"),
    (sa_exc.TimeoutError, StoreUnavailable, "no database connection became free in time"),
    (sa_exc.DisconnectionError, StoreUnavailable, "the database connection was lost"),
    (OSError, StoreUnavailable, "the database cannot be reached"),
    (TimeoutError, StoreUnavailable, "the database did not answer in time"),
)


@contextmanager
def converted_errors() -> Iterator[None]:
    """Re-raise driver and SQLAlchemy errors as store errors; let store errors through."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            raise StoreUnavailable("the database connection was lost") from exc
        for source, target, message in _ERROR_TABLE:
            if isinstance(exc, source):
                raise target(message) from exc
        raise


class Runner(Protocol):
    async def run(self, operation: Operation[T]) -> T:
        """Run `operation` in its own transaction; commit before returning, or raise a store error."""

    async def close(self) -> None: ...


class InlineSqliteRunner:
    """Runs each operation at once on the event loop's thread, on one held SQLite connection.

    An operation is a few statements of tens of microseconds with no await inside, so it never
    interleaves with another task (the connection is never shared between concurrent tasks), and it
    costs less than the thread handoff it replaces. The loop only waits longer when another process
    holds SQLite's write lock (an admin command), bounded by the busy timeout.
    """

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "sqlite":
            raise ValueError("InlineSqliteRunner needs a SQLite engine")
        self._engine = engine
        self._connection: Connection | None = None
        self._driver: Any = None

    async def start(self) -> None:
        with converted_errors():
            self._connection = self._engine.connect()
            # Transaction control goes straight to the driver: through SQLAlchemy it cost as much as
            # the statements themselves.
            self._driver = self._connection.connection.driver_connection

    async def run(self, operation: Operation[T]) -> T:
        connection, driver = self._connection, self._driver
        if connection is None or driver is None:
            raise StoreUnavailable("the store is closed")
        with converted_errors():
            # IMMEDIATE takes the write lock up front, so a transaction never fails half-way upgrading.
            driver.execute("BEGIN IMMEDIATE")
            try:
                result = operation(connection)
            except BaseException:
                driver.execute("ROLLBACK")
                raise
            driver.execute("COMMIT")
        return result

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = self._driver = None
        self._engine.dispose()


def configure_sqlite_engine(engine: Engine, busy_timeout_ms: int) -> None:
    """WAL, NORMAL sync (durable against process crashes), busy timeout and foreign keys per connection."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Transactions are begun explicitly by the runner (pysqlite's implicit BEGIN would break SAVEPOINT).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


class AsyncEngineRunner:
    """SQLAlchemy's asyncio engine: one pooled connection and one transaction per operation."""

    def __init__(self, engine: AsyncEngine, timeout_seconds: float) -> None:
        self._engine = engine
        self._timeout = timeout_seconds

    async def start(self) -> None:
        return None

    async def run(self, operation: Operation[T]) -> T:
        with converted_errors():
            async with asyncio.timeout(self._timeout), self._engine.begin() as connection:
                return await connection.run_sync(operation)

    async def close(self) -> None:
        await self._engine.dispose()
