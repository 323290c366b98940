"""The hot statements on SQLite as plain SQL on the runner's one sqlite3 connection.

Refresh, logout, the live-session check, LogoutAll and ListSessions run here instead of through
SQLAlchemy's execution layer, which cost more per call than the statements themselves. Each is a single
statement, so it needs no BEGIN/COMMIT: the connection is in autocommit mode (runners.py), and a write
statement takes SQLite's write lock when it starts, waiting up to the busy timeout like BEGIN IMMEDIATE.
sqlite3 keeps each SQL text prepared in its statement cache, so it is compiled once per connection.

The statements mean exactly what sql.py's SQLAlchemy statements mean (`_LIVE`, `_OWNER_EXISTS`), and
datetimes are stored as SQLAlchemy stores them on SQLite (schema.py's `UtcDateTime`): naive UTC text in
one fixed format, so rows written by either path are read by the other, and text comparison orders them.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from authsvc.store.interface import NotFound, RotatedSession, Rotation, Session, SessionStanding
from authsvc.store.runners import InlineSqliteRunner, raise_store_error


def to_text(value: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite dialect stores a `UtcDateTime`: 'YYYY-MM-DD HH:MM:SS.ffffff', UTC."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store: pass UTC-aware times")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def from_text(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _optional_time(value: str | None) -> datetime | None:
    return None if value is None else from_text(value)


# ?1 session id, ?2 spent generation, ?3 spent hash, ?4 new hash, ?5 now, ?6 new expiry. The row's other
# columns are known from the arguments; the owner's claims come back in the same statement.
_ROTATE = (
    "UPDATE sessions SET generation = generation + 1, token_hash = ?4, previous_token_hash = ?3,"
    " refreshed_at = ?5, last_used_at = ?5, expires_at = ?6"
    " WHERE id = ?1 AND generation = ?2 AND token_hash = ?3 AND revoked_at IS NULL AND expires_at > ?5"
    " AND EXISTS (SELECT 1 FROM users WHERE users.id = sessions.user_id)"
    " RETURNING user_id, created_at, user_agent, ip_address,"
    " (SELECT email FROM users WHERE users.id = sessions.user_id),"
    " (SELECT role FROM users WHERE users.id = sessions.user_id),"
    " (SELECT email_verified_at IS NOT NULL FROM users WHERE users.id = sessions.user_id)"
)
# ?1 session id, ?2 now, ?3 reason[, ?4 current token hash]
_REVOKE = (
    "UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3, revocation_room = NULL"
    " WHERE id = ?1 AND revoked_at IS NULL AND expires_at > ?2 RETURNING user_id"
)
_REVOKE_CURRENT = (
    "UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3, revocation_room = NULL"
    " WHERE id = ?1 AND token_hash = ?4 AND revoked_at IS NULL AND expires_at > ?2"
    " AND EXISTS (SELECT 1 FROM users WHERE users.id = sessions.user_id)"
    " RETURNING user_id"
)
# ?1 user id, ?2 now, ?3 reason
_REVOKE_ALL = (
    "UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3, revocation_room = NULL"
    " WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2"
)
_SELECT = (
    "SELECT id, user_id, generation, token_hash, previous_token_hash, created_at, refreshed_at, last_used_at,"
    " expires_at, revoked_at, revoked_reason, user_agent, ip_address"
    " FROM sessions WHERE id = ?1 AND EXISTS (SELECT 1 FROM users WHERE users.id = sessions.user_id)"
)
# ?1 session id, ?2 now
_STANDING = (
    "SELECT user_id, revoked_at IS NOT NULL, expires_at <= ?2"
    " FROM sessions WHERE id = ?1 AND EXISTS (SELECT 1 FROM users WHERE users.id = sessions.user_id)"
)
# ?1 user id, ?2 now
_LIST_LIVE = (
    "SELECT id, user_id, generation, token_hash, previous_token_hash, created_at, refreshed_at, last_used_at,"
    " expires_at, revoked_at, revoked_reason, user_agent, ip_address"
    " FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2"
    " ORDER BY created_at DESC, id"
)


def _session(row: Any) -> Session:
    return Session(
        id=row[0],
        user_id=row[1],
        generation=row[2],
        token_hash=bytes(row[3]),
        previous_token_hash=None if row[4] is None else bytes(row[4]),
        created_at=from_text(row[5]),
        refreshed_at=from_text(row[6]),
        last_used_at=from_text(row[7]),
        expires_at=from_text(row[8]),
        revoked_at=_optional_time(row[9]),
        revoked_reason=row[10],
        user_agent=row[11],
        ip_address=row[12],
    )


class SqliteHotPath:
    """The hot session statements on the runner's connection (which stays the runner's: close() is its)."""

    def __init__(self, runner: InlineSqliteRunner) -> None:
        self._runner = runner

    def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        driver = self._runner.driver
        try:
            # fetchall steps the statement to its end, which resets it: that commits it.
            return driver.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise_store_error(exc)

    def _count(self, sql: str, params: tuple[Any, ...]) -> int:
        driver = self._runner.driver
        try:
            return int(driver.execute(sql, params).rowcount)
        except sqlite3.Error as exc:
            raise_store_error(exc)

    async def rotate_session(self, rotation: Rotation) -> RotatedSession | None:
        now, expires_at = to_text(rotation.now), to_text(rotation.expires_at)
        params = (
            rotation.session_id,
            rotation.generation,
            rotation.token_hash,
            rotation.new_token_hash,
            now,
            expires_at,
        )
        rows = self._fetch(_ROTATE, params)
        if not rows:
            return None
        user_id, created_at, user_agent, ip_address, email, role, email_verified = rows[0]
        refreshed_at = from_text(now)
        session = Session(
            id=rotation.session_id,
            user_id=user_id,
            generation=rotation.generation + 1,
            token_hash=bytes(rotation.new_token_hash),
            previous_token_hash=bytes(rotation.token_hash),
            created_at=from_text(created_at),
            refreshed_at=refreshed_at,
            last_used_at=refreshed_at,
            expires_at=from_text(expires_at),
            revoked_at=None,
            revoked_reason=None,
            user_agent=user_agent,
            ip_address=ip_address,
        )
        return RotatedSession(session, email, role, bool(email_verified))

    async def revoke_session(
        self, session_id: str, reason: str, now: datetime, *, token_hash: bytes | None = None
    ) -> str | None:
        if token_hash is None:
            rows = self._fetch(_REVOKE, (session_id, to_text(now), reason))
        else:
            rows = self._fetch(_REVOKE_CURRENT, (session_id, to_text(now), reason, token_hash))
        return str(rows[0][0]) if rows else None

    async def revoke_all_sessions(self, user_id: str, reason: str, now: datetime) -> int:
        return self._count(_REVOKE_ALL, (user_id, to_text(now), reason))

    async def get_session(self, session_id: str) -> Session:
        rows = self._fetch(_SELECT, (session_id,))
        if not rows:
            raise NotFound("no such session")
        return _session(rows[0])

    async def session_standing(self, session_id: str, now: datetime) -> SessionStanding:
        rows = self._fetch(_STANDING, (session_id, to_text(now)))
        if not rows:
            raise NotFound("no such session")
        user_id, revoked, expired = rows[0]
        return SessionStanding(user_id, bool(revoked), bool(expired))

    async def list_sessions(self, user_id: str, now: datetime) -> list[Session]:
        return [_session(row) for row in self._fetch(_LIST_LIVE, (user_id, to_text(now)))]

    async def close(self) -> None:
        """Nothing of its own to release: the connection is the runner's."""
