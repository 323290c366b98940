"""The hot path on the raw drivers (hot_sqlite.py, hot_postgres.py) against SQLAlchemy's cold paths on the
same database: each reads what the other wrote, identically; plus what only the SQL stores have (a session
whose owner row is gone, the room revoking gives back, PostgreSQL's fillfactor). The conformance suite
(the other files here) checks the hot path's guarantees on every backend."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from authsvc.store import NotFound, Rotation, Session, SessionStanding
from authsvc.store.migrate import migrate
from authsvc.store.schema import REVOCATION_ROOM, sessions
from authsvc.store.sql import SqlStore, open_store
from tests import databases
from tests.store.conftest import DAY, T0, new_session, new_user

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "authsvc.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    database: databases.PostgresDatabase = request.getfixturevalue("postgres_database")
    databases.empty_database_sync(database)
    return database.url


@pytest.fixture
async def sql_store(url: str) -> AsyncIterator[SqlStore]:
    await migrate(url)
    opened = await open_store(url, pool_size=4, timeout_seconds=10)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def engine(url: str) -> AsyncIterator[AsyncEngine]:
    """SQLAlchemy on the same database, reading rows with the schema's column types."""
    opened = create_async_engine(url)
    try:
        yield opened
    finally:
        await opened.dispose()


async def _read_with_sqlalchemy(engine: AsyncEngine, session_id: str) -> Session:
    async with engine.connect() as connection:
        row = (await connection.execute(select(sessions).where(sessions.c.id == session_id))).one()
    return Session(**{name: getattr(row, name) for name in Session.__dataclass_fields__})


async def _raw_rows(url: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    """Rows read with the bare driver, beneath both paths."""
    if url.startswith("sqlite"):
        connection = sqlite3.connect(url.split("///", 1)[1])
        try:
            return connection.execute(sql.replace("$1", "?"), args).fetchall()
        finally:
            connection.close()
    raw = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return [tuple(row) for row in await raw.fetch(sql, *args)]
    finally:
        await raw.close()


async def test_what_the_hot_path_writes_sqlalchemy_reads_identically(sql_store, engine):
    user = new_user()
    await sql_store.create_user(user)
    opened = await sql_store.create_session(new_session(user))
    later = T0 + timedelta(hours=1, microseconds=123456)
    rotated = await sql_store.rotate_session(
        Rotation(opened.id, 0, opened.token_hash, b"n" * 32, later, later + 30 * DAY)
    )
    assert rotated is not None
    assert await _read_with_sqlalchemy(engine, opened.id) == rotated.session
    assert await sql_store.revoke_session(opened.id, "logout", later + DAY) == user.id
    revoked = await _read_with_sqlalchemy(engine, opened.id)
    assert (revoked.revoked_at, revoked.revoked_reason) == (later + DAY, "logout")
    assert revoked == await sql_store.get_session(opened.id)


async def test_what_sqlalchemy_writes_the_hot_path_reads_and_compares_identically(sql_store, engine):
    user = new_user()
    await sql_store.create_user(user)
    opened = await sql_store.create_session(new_session(user))  # the cold path (SQLAlchemy)
    assert await sql_store.get_session(opened.id) == await _read_with_sqlalchemy(engine, opened.id)
    # The hot path's comparisons with `now` against times SQLAlchemy stored, at the microsecond.
    just_before = opened.expires_at - timedelta(microseconds=1)
    assert await sql_store.session_standing(opened.id, just_before) == SessionStanding(user.id, False, False)
    assert (await sql_store.session_standing(opened.id, opened.expires_at)).expired
    assert [s.id for s in await sql_store.list_sessions(user.id, just_before)] == [opened.id]
    assert await sql_store.list_sessions(user.id, opened.expires_at) == []
    # And SQLAlchemy's against times the hot path stored: pruning deletes what it revoked.
    assert await sql_store.revoke_all_sessions(user.id, "logout_all", T0 + DAY) == 1
    assert await sql_store.delete_sessions_before(T0 + DAY, batch_size=10) == 0
    assert await sql_store.delete_sessions_before(T0 + DAY + timedelta(microseconds=1), batch_size=10) == 1


async def test_the_cold_path_revokes_what_the_hot_path_rotated(sql_store):
    user = new_user()
    await sql_store.create_user(user)
    opened = await sql_store.create_session(new_session(user))
    rotated = await sql_store.rotate_session(
        Rotation(opened.id, 0, opened.token_hash, b"n" * 32, T0, T0 + DAY)
    )
    assert rotated is not None
    assert await sql_store.revoke_user_session(user.id, opened.id, "revoked_by_user", T0 + timedelta(hours=1))
    standing = await sql_store.session_standing(opened.id, T0 + timedelta(hours=1))
    assert standing == SessionStanding(user.id, revoked=True, expired=False)


async def test_a_session_whose_owner_row_is_gone_is_no_session_to_the_hot_path(sql_store, url):
    user = new_user()
    await sql_store.create_user(user)
    opened = await sql_store.create_session(new_session(user))
    # Deleted by hand without the cascade (SQLite's foreign keys off; PostgreSQL's triggers off).
    if url.startswith("sqlite"):
        connection = sqlite3.connect(url.split("///", 1)[1])
        connection.execute("PRAGMA foreign_keys=OFF")
        connection.execute("DELETE FROM users WHERE id = ?", (user.id,))
        connection.commit()
        connection.close()
    else:
        raw = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        await raw.execute("SET session_replication_role = replica")
        await raw.execute("DELETE FROM users WHERE id = $1", user.id)
        await raw.close()
    with pytest.raises(NotFound):
        await sql_store.get_session(opened.id)
    with pytest.raises(NotFound):
        await sql_store.session_standing(opened.id, T0)
    assert (
        await sql_store.rotate_session(Rotation(opened.id, 0, opened.token_hash, b"n" * 32, T0, T0 + DAY))
        is None
    )
    assert await sql_store.revoke_session(opened.id, "logout", T0, token_hash=opened.token_hash) is None


# PostgreSQL gets its room from the table's fillfactor instead (the next test).
@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
async def test_on_sqlite_a_session_keeps_room_for_its_revocation_until_revoked(sql_store, url):
    user = new_user()
    await sql_store.create_user(user)
    by_hot, by_all, by_cold = [await sql_store.create_session(new_session(user)) for _ in range(3)]
    room_sql = "SELECT length(revocation_room) FROM sessions WHERE id = $1"
    assert await _raw_rows(url, room_sql, by_hot.id) == [(len(REVOCATION_ROOM),)]
    await sql_store.revoke_session(by_hot.id, "logout", T0)
    await sql_store.revoke_user_session(user.id, by_cold.id, "revoked_by_user", T0)
    await sql_store.revoke_all_sessions(user.id, "logout_all", T0)
    for revoked in (by_hot, by_all, by_cold):
        assert await _raw_rows(url, room_sql, revoked.id) == [(None,)]


@pytest.mark.parametrize("url", ["postgresql"], indirect=True)
async def test_on_postgresql_sessions_leave_half_of_each_page_for_hot_updates(url):
    await migrate(url)
    options = await _raw_rows(url, "SELECT reloptions FROM pg_class WHERE relname = $1", "sessions")
    assert options == [(["fillfactor=50"],)]
