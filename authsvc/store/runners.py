"""How store operations reach the database: each operation is one transaction run by a runner.

An operation is a plain function over a SQLAlchemy `Connection`, so the same Core statements serve
every dialect. Two runners execute them:

- `SqliteWriterRunner`: one thread owns the only SQLite connection and drains a queue, running each
  waiting operation under its own SAVEPOINT and committing the whole batch once. SQLite allows one
  writer at a time anyway; this removes the pool checkout and the thread hops per statement that cap
  SQLAlchemy-over-aiosqlite at about 700 operations/s here (SPEC.md), and group commit amortises the
  WAL write. Every caller is answered only after the commit that holds its change.
- `AsyncEngineRunner`: SQLAlchemy's asyncio engine (asyncpg for PostgreSQL), one pooled connection and
  one transaction per operation.

Driver errors are converted here, in one place per runner, to the store's errors.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from authsvc.store.interface import AlreadyExists, NotFound, StoreError, StoreUnavailable

T = TypeVar("T")
Operation = Callable[[Connection], T]

log = logging.getLogger(__name__)

# SQLSTATE classes that mean "not now, try again" (PostgreSQL, appendix A): 08 connection exception,
# 40 transaction rollback (serialization failure, deadlock victim: nothing was committed),
# 53 insufficient resources (too many connections), 57 operator intervention (admin or crash
# shutdown, "the database system is starting up", statement cancelled).
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57"})
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


# Most specific first: the first row whose class and condition match decides.
_ERROR_TABLE: tuple[
    tuple[type[BaseException], Callable[[BaseException], bool] | None, type[StoreError], str], ...
] = (
    (sa_exc.IntegrityError, _is_foreign_key_violation, NotFound, "a referenced row does not exist"),
    (sa_exc.IntegrityError, _is_unique_violation, AlreadyExists, "a unique value is taken"),
    (sa_exc.DBAPIError, _is_lost_connection, StoreUnavailable, "the database connection was lost"),
    (Exception, _is_server_unavailable, StoreUnavailable, "the database is unavailable"),
    (sa_exc.OperationalError, None, StoreUnavailable, "the database is unavailable"),
    (sa_exc.InterfaceError, None, StoreUnavailable, "the database connection failed"),
    (sa_exc.TimeoutError, None, StoreUnavailable, "no database connection became free in time"),
    (sa_exc.DisconnectionError, None, StoreUnavailable, "the database connection was lost"),
    # TimeoutError is an OSError: it goes first.
    (TimeoutError, None, StoreUnavailable, "the database did not answer in time"),
    (OSError, None, StoreUnavailable, "the database cannot be reached"),
)


@contextmanager
def converted_errors() -> Iterator[None]:
    """Re-raise driver and SQLAlchemy errors as store errors; let store errors through."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        if isinstance(exc, sa_exc.StatementError) and isinstance(exc.orig, ValueError | TypeError):
            # A bad argument (a naive datetime) is the caller's bug, raised before any database work.
            raise exc.orig from exc
        for source, condition, target, message in _ERROR_TABLE:
            if isinstance(exc, source) and (condition is None or condition(exc)):
                raise target(message) from exc
        raise


class Runner(Protocol):
    async def run(self, operation: Operation[T]) -> T:
        """Run `operation` in its own transaction; commit before returning, or raise a store error."""

    async def close(self) -> None: ...


@dataclass
class _Job:
    operation: Operation[Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _deliver(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class SqliteWriterRunner:
    """One thread, one SQLite connection, group commit. See the module docstring."""

    def __init__(self, engine: Engine, max_batch: int = 128) -> None:
        if engine.dialect.name != "sqlite":
            raise ValueError("SqliteWriterRunner needs a SQLite engine")
        self._engine = engine
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="authsvc-sqlite-writer", daemon=True)
        self._closed = False

    async def start(self) -> None:
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._start_error is not None:
            with converted_errors():
                raise self._start_error

    async def run(self, operation: Operation[T]) -> T:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(operation, future, loop))
        return await future

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        self._engine.dispose()

    def _work(self) -> None:
        try:
            connection = self._engine.connect()
        except Exception as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        with connection:
            stopping = False
            while not stopping:
                job = self._queue.get()
                if job is None:
                    break
                batch = [job]
                while len(batch) < self._max_batch:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stopping = True
                        break
                    batch.append(more)
                self._run_batch(connection, batch)

    def _run_batch(self, connection: Connection, batch: list[_Job]) -> None:
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            with converted_errors():
                # IMMEDIATE takes the write lock up front, so a batch never fails half-way on an upgrade.
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    for job in batch:
                        outcomes.append(self._run_one(connection, job))
                    connection.exec_driver_sql("COMMIT")
                except BaseException:
                    connection.exec_driver_sql("ROLLBACK")
                    raise
        except Exception as exc:
            log.warning("SQLite batch of %d failed: %s", len(batch), type(exc).__name__)
            outcomes = [(job, None, exc) for job in batch]
        for job, result, error in outcomes:
            job.loop.call_soon_threadsafe(_deliver, job.future, result, error)

    @staticmethod
    def _run_one(connection: Connection, job: _Job) -> tuple[_Job, Any, BaseException | None]:
        connection.exec_driver_sql("SAVEPOINT op")
        try:
            with converted_errors():
                result = job.operation(connection)
        except StoreError as exc:
            connection.exec_driver_sql("ROLLBACK TO op")
            connection.exec_driver_sql("RELEASE op")
            return job, None, exc
        except Exception as exc:
            # A bug in an operation fails only its own caller.
            connection.exec_driver_sql("ROLLBACK TO op")
            connection.exec_driver_sql("RELEASE op")
            return job, None, exc
        connection.exec_driver_sql("RELEASE op")
        return job, result, None


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
