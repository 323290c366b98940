"""Test databases for every backend: a SQLite file per test, one PostgreSQL database per test run.

PostgreSQL is the machine's server (AUTHSVC_TEST_POSTGRES_URL, default the local trust-auth `postgres`
user). Each run creates its own uniquely named database and drops it after; tests start from empty
tables (TRUNCATE), which is much cheaper than a database per test.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from authsvc.store.migrate import migrate
from authsvc.store.schema import metadata

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql")
# The `database_url` of the in-process server tests: on PostgreSQL they are marked `slow`, so `make test-fast`
# runs each of them once, on SQLite, while the store conformance suite (tests/store/) still checks
# PostgreSQL in every run.
SERVER_BACKENDS = ("sqlite", pytest.param("postgresql", marks=pytest.mark.slow))


class PostgresUnreachable(Exception):
    """The test PostgreSQL server did not answer."""


@dataclass(frozen=True)
class PostgresDatabase:
    admin_url: str
    name: str

    @property
    def url(self) -> str:
        """The SQLAlchemy URL authsvc takes (`postgresql+asyncpg://...`)."""
        return str(
            make_url(self.admin_url)
            .set(drivername="postgresql+asyncpg", database=self.name)
            .render_as_string(hide_password=False)
        )

    @property
    def dsn(self) -> str:
        """The plain libpq-style URL asyncpg takes."""
        return str(make_url(self.admin_url).set(database=self.name).render_as_string(hide_password=False))


async def _admin(admin_url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(admin_url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise PostgresUnreachable(f"PostgreSQL at {admin_url} is unreachable: {exc!r}") from exc


async def check_reachable(admin_url: str) -> None:
    """Raise PostgresUnreachable unless the server accepts a connection."""
    connection = await _admin(admin_url)
    await connection.close()


async def create_database(
    admin_url: str, prefix: str = "authsvc_test", *, migrated: bool = True
) -> PostgresDatabase:
    """Create an empty, uniquely named database, migrated to the newest revision unless told not to."""
    database = PostgresDatabase(admin_url, f"{prefix}_{secrets.token_hex(6)}")
    connection = await _admin(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{database.name}"')
    finally:
        await connection.close()
    if migrated:
        await migrate(database.url)
    return database


async def drop_database(database: PostgresDatabase) -> None:
    connection = await _admin(database.admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
    finally:
        await connection.close()


async def empty_database(database: PostgresDatabase) -> None:
    """Delete every row, keeping the schema (and Alembic's revision)."""
    connection = await asyncpg.connect(database.dsn, timeout=3)
    try:
        # Every table the schema has, so a new table can never leak rows from one test into the next.
        tables = ", ".join(table.name for table in metadata.sorted_tables)
        await connection.execute(f"TRUNCATE {tables}")
    finally:
        await connection.close()


def check_reachable_sync(admin_url: str) -> None:
    asyncio.run(check_reachable(admin_url))


def create_database_sync(
    admin_url: str, prefix: str = "authsvc_test", *, migrated: bool = True
) -> PostgresDatabase:
    return asyncio.run(create_database(admin_url, prefix, migrated=migrated))


def drop_database_sync(database: PostgresDatabase) -> None:
    asyncio.run(drop_database(database))


def empty_database_sync(database: PostgresDatabase) -> None:
    asyncio.run(empty_database(database))
