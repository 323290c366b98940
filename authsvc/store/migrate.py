"""Schema migrations with Alembic, run programmatically on the service's own database URL."""

from __future__ import annotations

import contextlib
import os
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
    """Create a SQLite database's folder private (0700) and the empty database file private (0600).

    They hold password hashes and session data. SQLite gives its -wal, -shm and -journal files the
    database file's permission bits, so these stay private too, whatever the process umask (`authsvc serve`
    sets 077 besides). An existing folder is left as it is; an existing database (and side file) that
    others could read, as earlier versions left it, is made 0600.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = Path(url.database)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if "uri" not in url.query:  # a `file:` URI names no plain path
            with contextlib.suppress(FileExistsError):  # an empty file is an empty SQLite database
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            for suffix in ("", "-wal", "-shm", "-journal"):
                side = path.with_name(path.name + suffix)
                with contextlib.suppress(FileNotFoundError):
                    if side.stat().st_mode & 0o077:
                        side.chmod(0o600)


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
