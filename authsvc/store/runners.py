"""How store operations reach the database: each operation is one transaction run by a runner.

An operation is a plain function over a SQLAlchemy `Connection`, so the same Core statements serve
every dialect. Two runners execute them:

- `InlineSqliteRunner`: the event loop's thread runs each operation at once on the one SQLite
  connection and commits it before answering. SQLite allows one writer at a time anyway; this removes
  the pool checkout and the thread hops that cap SQLAlchemy over aiosqlite at about 700 operations/s
  here (docs/architecture.md). A group-commit writer thread was measured too and lost: under load its
  thread waits for the GIL, which the busy event loop hands over only every few milliseconds.
  The hot path's plain SQL (hot_sqlite.py) runs on the same connection, and WAL checkpoints on a thread
  of their own (sqlite_checkpoints.py).
- `AsyncEngineRunner`: SQLAlchemy's asyncio engine (asyncpg for PostgreSQL), one pooled connection and
  one transaction per operation. The hot path has connections of its own (hot_postgres.py).

Driver errors are converted here, in one table for every runner and the hot path, to the store's errors.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, Protocol, TypeVar

import asyncpg
from sqlalchemy import Connection, Engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from authsvc.store.interface import AlreadyExists, NotFound, StoreError, StoreUnavailable
from authsvc.store.sqlite_checkpoints import BACKSTOP_PAGES, BackgroundCheckpointer

T = TypeVar("T")
Operation = Callable[[Connection], T]


# SQLSTATE classes that mean "not now, try again" (PostgreSQL, appendix A): 08 connection exception,
# 40 transaction rollback (serialization failure, deadlock victim: nothing was committed),
# 53 insufficient resources (too many connections), 57 operator intervention (admin or crash
# shutdown, "the database system is starting up", statement cancelled).
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57"})
# SQLSTATE classes that mean the connection settings name what the server refuses: 28 invalid
# authorization (no such role, wrong password), 3D invalid catalog name (no such database). The
# server's own message says which, and names no secret.
_REFUSED_SQLSTATE_CLASSES = frozenset({"28", "3D"})
_FOREIGN_KEY_VIOLATION = "23503"
_UNIQUE_VIOLATION = "23505"
_SQLITE_FOREIGN_KEY = frozenset({"SQLITE_CONSTRAINT_FOREIGNKEY"})
_SQLITE_UNIQUE = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The error, the DBAPI error SQLAlchemy wraps, and the driver errors beneath it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__


def _sqlstate(exc: BaseException) -> str | None:
    for cause in _causes(exc):
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str):
            return state
    return None


def _violates(sqlstate: str, sqlite_names: frozenset[str]) -> Callable[[BaseException], bool]:
    def check(exc: BaseException) -> bool:
        return _sqlstate(exc) == sqlstate or any(
            getattr(cause, "sqlite_errorname", None) in sqlite_names for cause in _causes(exc)
        )

    return check


_is_foreign_key_violation = _violates(_FOREIGN_KEY_VIOLATION, _SQLITE_FOREIGN_KEY)
_is_unique_violation = _violates(_UNIQUE_VIOLATION, _SQLITE_UNIQUE)


def _is_lost_connection(exc: BaseException) -> bool:
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


def _is_server_unavailable(exc: BaseException) -> bool:
    state = _sqlstate(exc)
    return state is not None and state[:2] in _UNAVAILABLE_SQLSTATE_CLASSES


def _refused_connection_message(exc: BaseException) -> str | None:
    """The server's message when it refused the connection's database or role, else None."""
    state = _sqlstate(exc)
    if state is None or state[:2] not in _REFUSED_SQLSTATE_CLASSES:
        return None
    # The driver's own error, the last in the chain: SQLAlchemy's wrappers prefix their class names.
    driver_errors = [cause for cause in _causes(exc) if isinstance(getattr(cause, "sqlstate", None), str)]
    return str(driver_errors[-1]).strip() or "the database refused the connection"


# Most specific first: the first row whose class and condition match decides.
_ERROR_TABLE: tuple[
    tuple[type[BaseException], Callable[[BaseException], bool] | None, type[StoreError], str], ...
] = (
    (sa_exc.IntegrityError, _is_foreign_key_violation, NotFound, "a referenced row does not exist"),
    (sa_exc.IntegrityError, _is_unique_violation, AlreadyExists, "a unique value is taken"),
    # The hot path's own asyncpg pool (hot_postgres.py): the driver's errors, not wrapped by SQLAlchemy.
    (
        asyncpg.IntegrityConstraintViolationError,
        _is_foreign_key_violation,
        NotFound,
        "a referenced row does not exist",
    ),
    (
        asyncpg.IntegrityConstraintViolationError,
        _is_unique_violation,
        AlreadyExists,
        "a unique value is taken",
    ),
    (sa_exc.DBAPIError, _is_lost_connection, StoreUnavailable, "the database connection was lost"),
    (Exception, _is_server_unavailable, StoreUnavailable, "the database is unavailable"),
    (sa_exc.OperationalError, None, StoreUnavailable, "the database is unavailable"),
    # Transaction control on SQLite goes to the driver directly (InlineSqliteRunner): its errors too.
    (sqlite3.OperationalError, None, StoreUnavailable, "the database is unavailable"),
    (sa_exc.InterfaceError, None, StoreUnavailable, "the database connection failed"),
    # asyncpg's own: a closed connection or pool ("connection is closed", "pool is closing").
    (asyncpg.InterfaceError, None, StoreUnavailable, "the database connection failed"),
    (sa_exc.TimeoutError, None, StoreUnavailable, "no database connection became free in time"),
    (sa_exc.DisconnectionError, None, StoreUnavailable, "the database connection was lost"),
    # TimeoutError is an OSError: it goes first.
    (TimeoutError, None, StoreUnavailable, "the database did not answer in time"),
    (OSError, None, StoreUnavailable, "the database cannot be reached"),
)


def store_error(exc: Exception) -> Exception:
    """The store error that `exc`, a driver or SQLAlchemy error, stands for; `exc` itself when it stands for
    none (a bug, which must propagate as it is)."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, sa_exc.StatementError) and isinstance(exc.orig, ValueError | TypeError):
        # A bad argument (a naive datetime) is the caller's bug, raised before any database work.
        return exc.orig
    refused = _refused_connection_message(exc)
    if refused is not None:
        return StoreUnavailable(refused)
    for source, condition, target, message in _ERROR_TABLE:
        if isinstance(exc, source) and (condition is None or condition(exc)):
            return target(message)
    return exc


def raise_store_error(exc: Exception) -> NoReturn:
    """Raise the store error `exc` stands for (from `exc`), or `exc` itself when it stands for none."""
    converted = store_error(exc)
    if converted is exc:
        raise exc
    raise converted from exc


@contextmanager
def converted_errors() -> Iterator[None]:
    """Re-raise driver and SQLAlchemy errors as store errors; let store errors through."""
    try:
        yield
    except Exception as exc:
        raise_store_error(exc)


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
        self._checkpoints: BackgroundCheckpointer | None = None

    async def start(self) -> None:
        with converted_errors():
            self._connection = self._engine.connect()
            # Transaction control goes straight to the driver: through SQLAlchemy it cost as much as
            # the statements themselves.
            self._driver = self._connection.connection.driver_connection
            self._checkpoints = _background_checkpoints(self._driver)

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

    @property
    def driver(self) -> sqlite3.Connection:
        """The held sqlite3 connection, for the hot path's plain SQL (hot_sqlite.py); autocommit, so a single
        statement is its own transaction. Raise StoreUnavailable once the runner is closed."""
        driver = self._driver
        if driver is None:
            raise StoreUnavailable("the store is closed")
        return driver  # type: ignore[no-any-return]

    async def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.stop()
            self._checkpoints = None
        if self._connection is not None:
            self._connection.close()
            self._connection = self._driver = None
        self._engine.dispose()


def _background_checkpoints(driver: sqlite3.Connection) -> BackgroundCheckpointer | None:
    """Move the WAL checkpoints of the database file `driver` is on off the loop (sqlite_checkpoints.py);
    None for a database without a file or a write-ahead log."""
    path = driver.execute("PRAGMA database_list").fetchone()[2]
    mode = driver.execute("PRAGMA journal_mode").fetchone()[0]
    if not path or str(mode).lower() != "wal":
        return None
    driver.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
    checkpoints = BackgroundCheckpointer(path)
    checkpoints.start()
    return checkpoints


def configure_sqlite_engine(engine: Engine, busy_timeout_ms: int) -> None:
    """WAL, NORMAL sync (durable against process crashes), busy timeout and foreign keys per connection."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The runner begins every transaction itself (BEGIN IMMEDIATE), so pysqlite must not begin its own.
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
        self._closed = False

    async def run(self, operation: Operation[T]) -> T:
        if self._closed:  # a disposed engine would quietly open new connections
            raise StoreUnavailable("the store is closed")
        with converted_errors():
            async with asyncio.timeout(self._timeout), self._engine.begin() as connection:
                return await connection.run_sync(operation)

    async def close(self) -> None:
        self._closed = True
        await self._engine.dispose()
