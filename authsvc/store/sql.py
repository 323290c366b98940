"""The SQL store: the hot session statements on the raw driver, every other operation Core statements
over one connection, run by a runner.

The hot path (refresh's rotation, logout, the live-session check, LogoutAll, ListSessions) is plain SQL on
sqlite3 or asyncpg (hot_sqlite.py, hot_postgres.py): SQLAlchemy's execution layer cost more per call than
the statements. Everything else, and the schema (schema.py, Alembic), stays SQLAlchemy: its statements are
the same on SQLite and PostgreSQL; only the runner differs (see runners.py).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any, Protocol

from sqlalchemy import (
    Connection,
    Integer,
    Row,
    and_,
    bindparam,
    create_engine,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import StaticPool

from authsvc.store import account_tokens_sql
from authsvc.store.hot_postgres import PostgresHotPath
from authsvc.store.hot_sqlite import SqliteHotPath
from authsvc.store.interface import (
    ACCOUNT_DISABLED_REASON,
    RESET_TOKEN,
    AccountToken,
    DisabledChange,
    NewSession,
    NotFound,
    PasswordReset,
    RotatedSession,
    Rotation,
    Session,
    SessionStanding,
    User,
    UserDisabled,
)
from authsvc.store.outbox import OutgoingMail, delete_mail_to_statement
from authsvc.store.runners import (
    AsyncEngineRunner,
    InlineSqliteRunner,
    Runner,
    configure_sqlite_engine,
)
from authsvc.store.schema import REVOCATION_ROOM, sessions, users


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        email=row.email,
        password_hash=row.password_hash,
        role=row.role,
        created_at=row.created_at,
        display_name=row.display_name,
        email_verified_at=row.email_verified_at,
        disabled_at=row.disabled_at,
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


# -- statements: built once, so each call pays neither construction nor cache-key generation -------------
# (building a Core statement per call cost more than executing it; see docs/architecture.md, "The store's
# hot path").

_LIVE = and_(sessions.c.revoked_at.is_(None), sessions.c.expires_at > bindparam("now"))
_SESSION_COLUMNS = tuple(sessions.c)

_INSERT_USER = users.insert()
_SELECT_USER_BY_ID = select(users).where(users.c.id == bindparam("user_id"))
_SELECT_USER_BY_EMAIL = select(users).where(users.c.email == bindparam("email"))
_ROTATE_PASSWORD_HASH = (
    update(users)
    .where(users.c.id == bindparam("user_id"), users.c.password_hash == bindparam("old_hash"))
    .values(password_hash=bindparam("new_hash"))
)
# A session is inserted only for a user whose account is not disabled, decided in the same statement: the
# SELECT reads the user's row FOR SHARE (SQLite ignores the clause: its writers are serialised anyway).
# The lock is what makes it atomic on PostgreSQL. Without it, a login could read the row as enabled while
# a disable commits, and insert after the disable's revoking UPDATE ran: that UPDATE never sees the new
# row, leaving a live session on a disabled account (the foreign key's own lock, FOR KEY SHARE, does not
# conflict with an UPDATE of a non-key column). FOR SHARE conflicts with the disable's row lock: a login
# that locks first commits before the disable revokes (so its session is revoked), and one that comes
# second waits, re-reads the row as disabled and inserts nothing. A separate SELECT ... FOR SHARE would do
# the same in two round trips; INSERT ... SELECT does it in one.
_NEW_SESSION_VALUES = select(
    *(
        bindparam(f"new_{column.name}", type_=column.type)
        for column in sessions.c
        if column.name != "user_id"
    ),
    users.c.id,
).where(users.c.id == bindparam("user_id"), users.c.disabled_at.is_(None))
_INSERT_SESSION = (
    sessions.insert()
    .from_select(
        [column.name for column in sessions.c if column.name != "user_id"] + ["user_id"],
        _NEW_SESSION_VALUES.with_for_update(read=True),
    )
    .returning(*_SESSION_COLUMNS)
)
_SELECT_USER_DISABLED_AT = select(users.c.disabled_at).where(users.c.id == bindparam("user_id"))
_REVOKE_USER_SESSION = (
    update(sessions)
    .where(sessions.c.id == bindparam("session_id"), sessions.c.user_id == bindparam("owner_id"), _LIVE)
    .values(revoked_at=bindparam("now"), revoked_reason=bindparam("reason"), revocation_room=None)
)
_REVOKE_ALL_SESSIONS = (
    update(sessions)
    .where(sessions.c.user_id == bindparam("owner_id"), _LIVE)
    .values(revoked_at=bindparam("now"), revoked_reason=bindparam("reason"), revocation_room=None)
)
_DELETE_SESSIONS_BEFORE = delete(sessions).where(
    sessions.c.id.in_(
        select(sessions.c.id)
        .where(or_(sessions.c.expires_at < bindparam("cutoff"), sessions.c.revoked_at < bindparam("cutoff")))
        .limit(bindparam("batch_size", type_=Integer))
        .scalar_subquery()
    )
)
_PING = text("SELECT 1")


# -- operations: each runs inside one transaction opened by the runner --------------------------------


def _create_user(connection: Connection, user: User) -> None:
    connection.execute(
        _INSERT_USER,
        {
            "id": user.id,
            "email": user.email,
            "password_hash": user.password_hash,
            "role": user.role,
            "created_at": user.created_at,
            "display_name": user.display_name,
            "email_verified_at": user.email_verified_at,
            "disabled_at": user.disabled_at,
        },
    )


def _get_user(connection: Connection, by_email: bool, value: str) -> User:
    if by_email:
        row = connection.execute(_SELECT_USER_BY_EMAIL, {"email": value}).one_or_none()
    else:
        row = connection.execute(_SELECT_USER_BY_ID, {"user_id": value}).one_or_none()
    if row is None:
        raise NotFound("no such user")
    return _user(row)


def _rotate_password_hash(connection: Connection, user_id: str, old_hash: str, new_hash: str) -> bool:
    result = connection.execute(
        _ROTATE_PASSWORD_HASH, {"user_id": user_id, "old_hash": old_hash, "new_hash": new_hash}
    )
    return result.rowcount == 1


_USER_AGENT_LENGTH: int | None = getattr(sessions.c.user_agent.type, "length", None)
_IP_ADDRESS_LENGTH: int | None = getattr(sessions.c.ip_address.type, "length", None)


def _fit(value: str | None, length: int | None, *, cut: bool) -> str | None:
    """`value` if it fits a column of `length` characters; else cut to it, or None when `cut` is False."""
    if value is None or length is None or len(value) <= length:
        return value
    return value[:length] if cut else None


def _create_session(connection: Connection, new: NewSession) -> Session:
    # The domain caps both already; a value past its column must never become a driver error. A cut
    # address would be another address, so an overlong one is dropped instead.
    values = {
        "id": new.id,
        "user_id": new.user_id,
        "generation": 0,
        "token_hash": new.token_hash,
        "previous_token_hash": None,
        "created_at": new.created_at,
        "refreshed_at": new.created_at,
        "last_used_at": new.created_at,
        "expires_at": new.expires_at,
        "revoked_at": None,
        "revoked_reason": None,
        "user_agent": _fit(new.user_agent, _USER_AGENT_LENGTH, cut=True),
        "ip_address": _fit(new.ip_address, _IP_ADDRESS_LENGTH, cut=False),
        "revocation_room": REVOCATION_ROOM if connection.dialect.name == "sqlite" else None,
    }
    params = {f"new_{name}": value for name, value in values.items() if name != "user_id"}
    row = connection.execute(_INSERT_SESSION, {**params, "user_id": new.user_id}).one_or_none()
    if row is None:
        # Nothing inserted: say why (a read in the same transaction, only on this path).
        owner = connection.execute(_SELECT_USER_DISABLED_AT, {"user_id": new.user_id}).one_or_none()
        if owner is None:
            raise NotFound("a referenced row does not exist")
        raise UserDisabled("the user's account is disabled")
    return _session(row)


def _revoke_user_session(
    connection: Connection, user_id: str, session_id: str, reason: str, now: datetime
) -> bool:
    params = {"session_id": session_id, "owner_id": user_id, "now": now, "reason": reason}
    return connection.execute(_REVOKE_USER_SESSION, params).rowcount == 1


def _revoke_all_sessions(connection: Connection, user_id: str, reason: str, now: datetime) -> int:
    params = {"owner_id": user_id, "now": now, "reason": reason}
    return int(connection.execute(_REVOKE_ALL_SESSIONS, params).rowcount)


def _delete_sessions_before(connection: Connection, cutoff: datetime, batch_size: int) -> int:
    params = {"cutoff": cutoff, "batch_size": batch_size}
    return int(connection.execute(_DELETE_SESSIONS_BEFORE, params).rowcount)


def _ping(connection: Connection) -> None:
    connection.execute(_PING)


# -- the account lifecycle: profile, password change, deletion, and what operators do -------------------

_USER_COLUMNS = tuple(users.c)
_UPDATE_DISPLAY_NAME = (
    update(users)
    .where(users.c.id == bindparam("user_id"))
    .values(display_name=bindparam("display_name"))
    .returning(*_USER_COLUMNS)
)
_REVOKE_OTHER_SESSIONS = (
    update(sessions)
    .where(sessions.c.user_id == bindparam("owner_id"), sessions.c.id != bindparam("keep_id"), _LIVE)
    .values(revoked_at=bindparam("now"), revoked_reason=bindparam("reason"), revocation_room=None)
)
# Sessions and account tokens go with the row (ON DELETE CASCADE; SQLite's foreign keys are on, runners.py).
_DELETE_USER = (
    delete(users)
    .where(users.c.id == bindparam("user_id"), users.c.password_hash == bindparam("password_hash"))
    .returning(users.c.email)
)
_DISABLE_USER = (
    update(users)
    .where(users.c.email == bindparam("owner_email"))
    # An account disabled again keeps the moment it was first disabled.
    .values(disabled_at=func.coalesce(users.c.disabled_at, bindparam("now", type_=users.c.disabled_at.type)))
    .returning(*_USER_COLUMNS)
)
_ENABLE_USER = (
    update(users)
    .where(users.c.email == bindparam("owner_email"))
    .values(disabled_at=None)
    .returning(*_USER_COLUMNS)
)
_SET_USER_ROLE = (
    update(users)
    .where(users.c.email == bindparam("owner_email"))
    .values(role=bindparam("new_role"))
    .returning(*_USER_COLUMNS)
)
_LIST_USERS = select(users).order_by(users.c.created_at, users.c.id).limit(bindparam("limit", type_=Integer))


def _update_display_name(connection: Connection, user_id: str, display_name: str) -> User:
    row = connection.execute(
        _UPDATE_DISPLAY_NAME, {"user_id": user_id, "display_name": display_name}
    ).one_or_none()
    if row is None:
        raise NotFound("no such user")
    return _user(row)


def _change_password(
    connection: Connection,
    *,
    user_id: str,
    old_hash: str,
    new_hash: str,
    keep_session_id: str,
    reason: str,
    now: datetime,
) -> int | None:
    if not _rotate_password_hash(connection, user_id, old_hash, new_hash):
        return None
    params = {"owner_id": user_id, "keep_id": keep_session_id, "now": now, "reason": reason}
    revoked = int(connection.execute(_REVOKE_OTHER_SESSIONS, params).rowcount)
    connection.execute(
        account_tokens_sql.DELETE_USER_TOKENS_OF_KIND, {"user_id": user_id, "kind": RESET_TOKEN}
    )
    return revoked


def _delete_user(connection: Connection, user_id: str, password_hash: str) -> bool:
    email = connection.execute(
        _DELETE_USER, {"user_id": user_id, "password_hash": password_hash}
    ).scalar_one_or_none()
    if email is None:
        return False
    connection.execute(delete_mail_to_statement(email))
    return True


def _set_user_disabled(connection: Connection, email: str, disabled: bool, now: datetime) -> DisabledChange:
    # The user's row first, then the sessions: see `_INSERT_SESSION` for why this order makes a racing
    # login's session either revoked here or never inserted.
    if disabled:
        row = connection.execute(_DISABLE_USER, {"owner_email": email, "now": now}).one_or_none()
    else:
        row = connection.execute(_ENABLE_USER, {"owner_email": email}).one_or_none()
    if row is None:
        raise NotFound("no such user")
    user = _user(row)
    revoked = _revoke_all_sessions(connection, user.id, ACCOUNT_DISABLED_REASON, now) if disabled else 0
    return DisabledChange(user, revoked)


def _set_user_role(connection: Connection, email: str, role: str) -> User:
    row = connection.execute(_SET_USER_ROLE, {"owner_email": email, "new_role": role}).one_or_none()
    if row is None:
        raise NotFound("no such user")
    return _user(row)


def _list_users(connection: Connection, limit: int) -> list[User]:
    return [_user(row) for row in connection.execute(_LIST_USERS, {"limit": limit})]


class HotPath(Protocol):
    """The hot session statements on the raw driver, with the `Store`'s signatures and guarantees."""

    async def get_session(self, session_id: str) -> Session: ...

    async def session_standing(self, session_id: str, now: datetime) -> SessionStanding: ...

    async def list_sessions(self, user_id: str, now: datetime) -> list[Session]: ...

    async def rotate_session(self, rotation: Rotation) -> RotatedSession | None: ...

    async def revoke_session(
        self, session_id: str, reason: str, now: datetime, *, token_hash: bytes | None = None
    ) -> str | None: ...

    async def revoke_all_sessions(self, user_id: str, reason: str, now: datetime) -> int: ...

    async def close(self) -> None: ...


class SqlStore:
    """The `Store`: the hot session statements on the raw driver (`HotPath`), everything else SQLAlchemy
    Core on a runner; see interface.py for each method's guarantees."""

    def __init__(self, runner: Runner, hot: HotPath) -> None:
        self._runner = runner
        self._hot = hot

    @property
    def runner(self) -> Runner:
        """The runner, for operations on this database's other tables (throttle.py)."""
        return self._runner

    async def create_user(self, user: User) -> None:
        await self._runner.run(partial(_create_user, user=user))

    async def get_user(self, user_id: str) -> User:
        return await self._runner.run(partial(_get_user, by_email=False, value=user_id))

    async def get_user_by_email(self, email: str) -> User:
        return await self._runner.run(partial(_get_user, by_email=True, value=email))

    async def rotate_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        return await self._runner.run(
            partial(_rotate_password_hash, user_id=user_id, old_hash=old_hash, new_hash=new_hash)
        )

    async def create_session(self, session: NewSession) -> Session:
        return await self._runner.run(partial(_create_session, new=session))

    # -- the hot path: on the raw driver (hot_sqlite.py, hot_postgres.py) --------------------------------

    async def get_session(self, session_id: str) -> Session:
        return await self._hot.get_session(session_id)

    async def session_standing(self, session_id: str, now: datetime) -> SessionStanding:
        return await self._hot.session_standing(session_id, now)

    async def list_sessions(self, user_id: str, now: datetime) -> list[Session]:
        return await self._hot.list_sessions(user_id, now)

    async def rotate_session(self, rotation: Rotation) -> RotatedSession | None:
        return await self._hot.rotate_session(rotation)

    async def revoke_session(
        self, session_id: str, reason: str, now: datetime, *, token_hash: bytes | None = None
    ) -> str | None:
        return await self._hot.revoke_session(session_id, reason, now, token_hash=token_hash)

    async def revoke_all_sessions(self, user_id: str, reason: str, now: datetime) -> int:
        return await self._hot.revoke_all_sessions(user_id, reason, now)

    # -- the cold paths: SQLAlchemy Core on the runner -------------------------------------------------

    async def revoke_user_session(self, user_id: str, session_id: str, reason: str, now: datetime) -> bool:
        return await self._runner.run(
            partial(_revoke_user_session, user_id=user_id, session_id=session_id, reason=reason, now=now)
        )

    async def delete_sessions_before(self, cutoff: datetime, batch_size: int) -> int:
        return await self._runner.run(partial(_delete_sessions_before, cutoff=cutoff, batch_size=batch_size))

    async def ping(self) -> None:
        await self._runner.run(_ping)

    async def close(self) -> None:
        try:
            await self._hot.close()
        finally:
            await self._runner.close()

    # -- reset and verification tokens (account_tokens_sql.py) ----------------------------------------

    async def create_reset_token(self, email: str, token: AccountToken, mail: OutgoingMail) -> str | None:
        return await self._runner.run(
            partial(account_tokens_sql.create_reset_token, email=email, token=token, mail=mail)
        )

    async def create_verify_token(self, user_id: str, token: AccountToken, mail: OutgoingMail) -> bool:
        return await self._runner.run(
            partial(account_tokens_sql.create_verify_token, user_id=user_id, token=token, mail=mail)
        )

    async def reset_password(
        self, token_hash: bytes, password_hash: str, reason: str, now: datetime
    ) -> PasswordReset | None:
        return await self._runner.run(
            partial(
                account_tokens_sql.reset_password,
                token_hash=token_hash,
                password_hash=password_hash,
                reason=reason,
                now=now,
            )
        )

    async def verify_email(self, token_hash: bytes, now: datetime) -> str | None:
        return await self._runner.run(
            partial(account_tokens_sql.verify_email, token_hash=token_hash, now=now)
        )

    async def delete_account_tokens_before(self, cutoff: datetime, batch_size: int) -> int:
        return await self._runner.run(
            partial(account_tokens_sql.delete_account_tokens_before, cutoff=cutoff, batch_size=batch_size)
        )

    async def update_display_name(self, user_id: str, display_name: str) -> User:
        return await self._runner.run(
            partial(_update_display_name, user_id=user_id, display_name=display_name)
        )

    async def change_password(
        self, user_id: str, *, old_hash: str, new_hash: str, keep_session_id: str, reason: str, now: datetime
    ) -> int | None:
        return await self._runner.run(
            partial(
                _change_password,
                user_id=user_id,
                old_hash=old_hash,
                new_hash=new_hash,
                keep_session_id=keep_session_id,
                reason=reason,
                now=now,
            )
        )

    async def delete_user(self, user_id: str, password_hash: str) -> bool:
        return await self._runner.run(partial(_delete_user, user_id=user_id, password_hash=password_hash))

    async def set_user_disabled(self, email: str, disabled: bool, now: datetime) -> DisabledChange:
        return await self._runner.run(partial(_set_user_disabled, email=email, disabled=disabled, now=now))

    async def set_user_role(self, email: str, role: str) -> User:
        return await self._runner.run(partial(_set_user_role, email=email, role=role))

    async def list_users(self, limit: int) -> list[User]:
        return await self._runner.run(partial(_list_users, limit=limit))


async def open_store(database_url: str, *, pool_size: int = 10, timeout_seconds: float = 5.0) -> SqlStore:
    """Open the store for `database_url` (sqlite+aiosqlite://... or postgresql+asyncpg://...).

    SQLite runs inline on the event loop's thread, the hot path in plain SQL on the same connection. Any
    other URL runs SQLAlchemy's asyncio engine for the cold paths and asyncpg connections for the hot path;
    `pool_size` connections at most, split between the two (at least one each). The schema must already be
    migrated (see migrate.py).
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        sync_engine = create_engine(url.set(drivername="sqlite"), poolclass=StaticPool)
        configure_sqlite_engine(sync_engine, busy_timeout_ms=int(timeout_seconds * 1000))
        sqlite_runner = InlineSqliteRunner(sync_engine)
        await sqlite_runner.start()
        return SqlStore(sqlite_runner, SqliteHotPath(sqlite_runner))
    cold_size = max(1, pool_size // 2)
    hot_size = max(1, pool_size - cold_size)
    engine = create_async_engine(
        url,
        pool_size=cold_size,
        max_overflow=0,
        pool_timeout=timeout_seconds,
        # No pre-ping: it costs a round trip per call (a third of PostgreSQL's throughput here). After a
        # database restart each stale pooled connection fails one call as UNAVAILABLE (retryable), is
        # invalidated, and is replaced.
        pool_pre_ping=False,
        connect_args=_connect_args(url.get_backend_name(), timeout_seconds),
    )
    # The hot path connects as SQLAlchemy would: the same host, database, user and URL options.
    _, connect_kwargs = engine.dialect.create_connect_args(engine.url)
    hot = PostgresHotPath.open(connect_kwargs, pool_size=hot_size, timeout_seconds=timeout_seconds)
    return SqlStore(AsyncEngineRunner(engine, timeout_seconds), hot)


def _connect_args(backend: str, timeout_seconds: float) -> dict[str, Any]:
    if backend == "postgresql":
        return {"timeout": timeout_seconds, "command_timeout": timeout_seconds}
    return {}
