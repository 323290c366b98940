"""The SQL store: every operation is Core statements over one connection, run by a runner.

The statements are the same on SQLite and PostgreSQL; only the runner differs (see runners.py).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, Row, and_, create_engine, delete, or_, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import StaticPool

from authsvc.store.interface import (
    NewSession,
    NotFound,
    RotatedSession,
    Rotation,
    Session,
    User,
)
from authsvc.store.runners import (
    AsyncEngineRunner,
    Runner,
    SqliteWriterRunner,
    configure_sqlite_engine,
)
from authsvc.store.schema import sessions, users


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        email=row.email,
        password_hash=row.password_hash,
        role=row.role,
        created_at=row.created_at,
    )


def _session(row: Row[Any]) -> Session:
    return Session(
        id=row.id,
        user_id=row.user_id,
        generation=row.generation,
        token_hash=bytes(row.token_hash),
        previous_token_hash=None if row.previous_token_hash is None else bytes(row.previous_token_hash),
        created_at=row.created_at,
        refreshed_at=row.refreshed_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_reason=row.revoked_reason,
        user_agent=row.user_agent,
        ip_address=row.ip_address,
    )


def _live(now: datetime) -> Any:
    return and_(sessions.c.revoked_at.is_(None), sessions.c.expires_at > now)


# -- operations: each runs inside one transaction opened by the runner --------------------------------


def _create_user(connection: Connection, user: User) -> None:
    connection.execute(
        users.insert().values(
            id=user.id,
            email=user.email,
            password_hash=user.password_hash,
            role=user.role,
            created_at=user.created_at,
        )
    )


def _get_user(connection: Connection, column: Any, value: str) -> User:
    row = connection.execute(select(users).where(column == value)).one_or_none()
    if row is None:
        raise NotFound("no such user")
    return _user(row)


def _rotate_password_hash(connection: Connection, user_id: str, old_hash: str, new_hash: str) -> bool:
    result = connection.execute(
        update(users)
        .where(users.c.id == user_id, users.c.password_hash == old_hash)
        .values(password_hash=new_hash)
    )
    return result.rowcount == 1


def _create_session(connection: Connection, new: NewSession) -> Session:
    try:
        row = connection.execute(
            sessions.insert()
            .values(
                id=new.id,
                user_id=new.user_id,
                generation=0,
                token_hash=new.token_hash,
                previous_token_hash=None,
                created_at=new.created_at,
                refreshed_at=new.created_at,
                last_used_at=new.created_at,
                expires_at=new.expires_at,
                user_agent=new.user_agent,
                ip_address=new.ip_address,
            )
            .returning(*sessions.c)
        ).one()
    except sa_exc.IntegrityError as exc:
        # The only foreign key is the user: a missing owner is the one way this insert can fail.
        raise NotFound("no such user") from exc
    return _session(row)


def _get_session(connection: Connection, session_id: str) -> Session:
    row = connection.execute(select(sessions).where(sessions.c.id == session_id)).one_or_none()
    if row is None:
        raise NotFound("no such session")
    return _session(row)


def _list_sessions(connection: Connection, user_id: str, now: datetime) -> list[Session]:
    rows = connection.execute(
        select(sessions)
        .where(sessions.c.user_id == user_id, _live(now))
        .order_by(sessions.c.created_at.desc(), sessions.c.id)
    )
    return [_session(row) for row in rows]


def _rotate_session(connection: Connection, rotation: Rotation) -> RotatedSession | None:
    row = connection.execute(
        update(sessions)
        .where(
            sessions.c.id == rotation.session_id,
            sessions.c.generation == rotation.generation,
            sessions.c.token_hash == rotation.token_hash,
            _live(rotation.now),
        )
        .values(
            generation=sessions.c.generation + 1,
            token_hash=rotation.new_token_hash,
            previous_token_hash=rotation.token_hash,
            refreshed_at=rotation.now,
            last_used_at=rotation.now,
            expires_at=rotation.expires_at,
        )
        .returning(*sessions.c)
    ).one_or_none()
    if row is None:
        return None
    owner = connection.execute(select(users).where(users.c.id == row.user_id)).one()
    return RotatedSession(session=_session(row), user=_user(owner))


def _revoke_session(
    connection: Connection, session_id: str, reason: str, now: datetime, token_hash: bytes | None
) -> bool:
    condition = and_(sessions.c.id == session_id, _live(now))
    if token_hash is not None:
        condition = and_(condition, sessions.c.token_hash == token_hash)
    result = connection.execute(
        update(sessions).where(condition).values(revoked_at=now, revoked_reason=reason)
    )
    return result.rowcount == 1


def _revoke_user_session(
    connection: Connection, user_id: str, session_id: str, reason: str, now: datetime
) -> bool:
    result = connection.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.user_id == user_id, _live(now))
        .values(revoked_at=now, revoked_reason=reason)
    )
    return result.rowcount == 1


def _revoke_all_sessions(connection: Connection, user_id: str, reason: str, now: datetime) -> int:
    result = connection.execute(
        update(sessions)
        .where(sessions.c.user_id == user_id, _live(now))
        .values(revoked_at=now, revoked_reason=reason)
    )
    return int(result.rowcount)


def _delete_sessions_before(connection: Connection, cutoff: datetime, batch_size: int) -> int:
    doomed = (
        select(sessions.c.id)
        .where(or_(sessions.c.expires_at < cutoff, sessions.c.revoked_at < cutoff))
        .limit(batch_size)
        .scalar_subquery()
    )
    result = connection.execute(delete(sessions).where(sessions.c.id.in_(doomed)))
    return int(result.rowcount)


def _ping(connection: Connection) -> None:
    connection.execute(text("SELECT 1"))


class SqlStore:
    """The `Store` over SQLAlchemy Core; see interface.py for each method's guarantees."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    @property
    def runner(self) -> Runner:
        """The runner, for operations on this database's other tables (throttle.py)."""
        return self._runner

    async def create_user(self, user: User) -> None:
        await self._runner.run(partial(_create_user, user=user))

    async def get_user(self, user_id: str) -> User:
        return await self._runner.run(partial(_get_user, column=users.c.id, value=user_id))

    async def get_user_by_email(self, email: str) -> User:
        return await self._runner.run(partial(_get_user, column=users.c.email, value=email))

    async def rotate_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        return await self._runner.run(
            partial(_rotate_password_hash, user_id=user_id, old_hash=old_hash, new_hash=new_hash)
        )

    async def create_session(self, session: NewSession) -> Session:
        return await self._runner.run(partial(_create_session, new=session))

    async def get_session(self, session_id: str) -> Session:
        return await self._runner.run(partial(_get_session, session_id=session_id))

    async def list_sessions(self, user_id: str, now: datetime) -> list[Session]:
        return await self._runner.run(partial(_list_sessions, user_id=user_id, now=now))

    async def rotate_session(self, rotation: Rotation) -> RotatedSession | None:
        return await self._runner.run(partial(_rotate_session, rotation=rotation))

    async def revoke_session(
        self, session_id: str, reason: str, now: datetime, *, token_hash: bytes | None = None
    ) -> bool:
        return await self._runner.run(
            partial(_revoke_session, session_id=session_id, reason=reason, now=now, token_hash=token_hash)
        )

    async def revoke_user_session(self, user_id: str, session_id: str, reason: str, now: datetime) -> bool:
        return await self._runner.run(
            partial(_revoke_user_session, user_id=user_id, session_id=session_id, reason=reason, now=now)
        )

    async def revoke_all_sessions(self, user_id: str, reason: str, now: datetime) -> int:
        return await self._runner.run(partial(_revoke_all_sessions, user_id=user_id, reason=reason, now=now))

    async def delete_sessions_before(self, cutoff: datetime, batch_size: int) -> int:
        return await self._runner.run(partial(_delete_sessions_before, cutoff=cutoff, batch_size=batch_size))

    async def ping(self) -> None:
        await self._runner.run(_ping)

    async def close(self) -> None:
        await self._runner.close()


async def open_store(database_url: str, *, pool_size: int = 10, timeout_seconds: float = 5.0) -> SqlStore:
    """Open the store for `database_url` (sqlite+aiosqlite://... or postgresql+asyncpg://...).

    SQLite runs on the group-commit writer thread; any other URL on SQLAlchemy's asyncio engine.
    The schema must already be migrated (see migrate.py).
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        sync_engine = create_engine(url.set(drivername="sqlite"), poolclass=StaticPool)
        configure_sqlite_engine(sync_engine, busy_timeout_ms=int(timeout_seconds * 1000))
        sqlite_runner = SqliteWriterRunner(sync_engine)
        await sqlite_runner.start()
        return SqlStore(sqlite_runner)
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=timeout_seconds,
        pool_pre_ping=True,
        connect_args=_connect_args(url.get_backend_name(), timeout_seconds),
    )
    async_runner = AsyncEngineRunner(engine, timeout_seconds)
    await async_runner.start()
    return SqlStore(async_runner)


def _connect_args(backend: str, timeout_seconds: float) -> dict[str, Any]:
    if backend == "postgresql":
        return {"timeout": timeout_seconds, "command_timeout": timeout_seconds}
    return {}
