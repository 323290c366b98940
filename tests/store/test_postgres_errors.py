"""How PostgreSQL errors reach the store's callers: one table, checked with real driver errors.

Each case makes the server raise that SQLSTATE (PL/pgSQL RAISE ... USING ERRCODE), so the error
takes the same path through asyncpg and SQLAlchemy as the real thing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from authsvc.store import AlreadyExists, NotFound, StoreError, StoreUnavailable
from authsvc.store.runners import AsyncEngineRunner, raise_store_error

CASES = [
    ("23505", "unique_violation", AlreadyExists),
    ("23503", "foreign_key_violation", NotFound),
    ("40001", "serialization_failure", StoreUnavailable),
    ("40P01", "deadlock_detected", StoreUnavailable),
    ("53300", "too_many_connections", StoreUnavailable),
    ("57P01", "admin_shutdown", StoreUnavailable),
    ("57P03", "cannot_connect_now", StoreUnavailable),
    ("57014", "query_canceled", StoreUnavailable),
    ("08006", "connection_failure", StoreUnavailable),
]


@pytest.fixture
async def runner(postgres_database) -> AsyncIterator[AsyncEngineRunner]:
    engine = create_async_engine(postgres_database.url, pool_size=1, max_overflow=0)
    yield AsyncEngineRunner(engine, timeout_seconds=5)
    await engine.dispose()


def _raising(sqlstate: str):
    def operation(connection):
        connection.execute(text(f"DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '{sqlstate}'; END $$"))

    return operation


@pytest.mark.parametrize(("sqlstate", "name", "expected"), CASES, ids=[case[1] for case in CASES])
async def test_a_postgresql_error_becomes_its_store_error(runner, sqlstate, name, expected):
    with pytest.raises(expected) as raised:
        await runner.run(_raising(sqlstate))
    assert type(raised.value) is expected


@pytest.mark.parametrize(("sqlstate", "name"), [("42601", "syntax_error"), ("23502", "not_null_violation")])
async def test_an_unexpected_postgresql_error_is_not_dressed_up_as_a_store_error(runner, sqlstate, name):
    """A bug propagates as is (the transport answers INTERNAL), never as "taken" or "unavailable"."""
    with pytest.raises(Exception) as raised:
        await runner.run(_raising(sqlstate))
    assert not isinstance(raised.value, StoreError)


async def test_the_runner_works_again_after_each_error(runner):
    for sqlstate, _, expected in CASES:
        with pytest.raises(expected):
            await runner.run(_raising(sqlstate))
        assert await runner.run(lambda connection: connection.execute(text("SELECT 1")).scalar()) == 1


# -- the hot path's own asyncpg pool (hot_postgres.py): the driver's errors, not wrapped by SQLAlchemy ------


@pytest.fixture
async def driver(postgres_database) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(postgres_database.dsn)
    yield connection
    await connection.close()


async def _driver_error(driver: asyncpg.Connection, sqlstate: str) -> Exception:
    try:
        await driver.execute(f"DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '{sqlstate}'; END $$")
    except Exception as exc:
        return exc
    raise AssertionError("the statement did not fail")


@pytest.mark.parametrize(("sqlstate", "name", "expected"), CASES, ids=[case[1] for case in CASES])
async def test_an_asyncpg_error_becomes_the_same_store_error(driver, sqlstate, name, expected):
    error = await _driver_error(driver, sqlstate)
    assert isinstance(error, asyncpg.PostgresError)  # the bare driver's, as the hot path meets it
    with pytest.raises(expected) as raised:
        raise_store_error(error)
    assert type(raised.value) is expected
    assert raised.value.__cause__ is error


@pytest.mark.parametrize(("sqlstate", "name"), [("42601", "syntax_error"), ("23502", "not_null_violation")])
async def test_an_unexpected_asyncpg_error_is_not_dressed_up_as_a_store_error(driver, sqlstate, name):
    error = await _driver_error(driver, sqlstate)
    with pytest.raises(Exception) as raised:
        raise_store_error(error)
    assert raised.value is error


async def test_a_closed_asyncpg_connection_is_store_unavailable(postgres_database):
    connection = await asyncpg.connect(postgres_database.dsn)
    await connection.close()
    with pytest.raises(asyncpg.InterfaceError) as closed:
        await connection.fetch("SELECT 1")
    with pytest.raises(StoreUnavailable):
        raise_store_error(closed.value)
