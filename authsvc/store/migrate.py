"""Schema migrations with Alembic, run programmatically on the service's own database URL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from authsvc.store.runners import converted_errors

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Serialises concurrent `migrate` runs of several replicas on one PostgreSQL (an arbitrary constant).
_PG_MIGRATION_LOCK = 0x61757468


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    command.upgrade(_config(connection), "head")


def _is_current(connection: Connection) -> bool:
    head = ScriptDirectory.from_config(_config(connection)).get_current_head()
    return MigrationContext.configure(connection).get_current_revision() == head


def _ensure_sqlite_folder(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def _engine(database_url: str, connect_timeout_seconds: float) -> AsyncEngine:
    # Only connecting is bounded: a migration may legitimately run long, or wait for another
    # replica's migration to release the advisory lock.
    url = make_url(database_url)
    connect_args = {"timeout": connect_timeout_seconds} if url.get_backend_name() == "postgresql" else {}
    return create_async_engine(url, connect_args=connect_args)


async def migrate(database_url: str, *, connect_timeout_seconds: float = 10.0) -> None:
    """Bring the schema to the newest revision; safe to run again, and concurrently on PostgreSQL."""
    _ensure_sqlite_folder(database_url)
    engine = _engine(database_url, connect_timeout_seconds)
    try:
        with converted_errors():
            async with engine.begin() as connection:
                await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()


async def is_migrated(database_url: str, *, connect_timeout_seconds: float = 10.0) -> bool:
    """Whether the database is at the newest revision. Raise StoreUnavailable when unreachable."""
    engine = _engine(database_url, connect_timeout_seconds)
    try:
        with converted_errors():
            async with engine.connect() as connection:
                return await connection.run_sync(_is_current)
    finally:
        await engine.dispose()
