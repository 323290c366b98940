"""The hot statements on PostgreSQL, on asyncpg connections of their own.

Refresh, logout, the live-session check, LogoutAll and ListSessions skip SQLAlchemy's asyncio engine,
whose greenlet hops, pool checkout and BEGIN/COMMIT round trips cost about 1.3 ms of CPU per call here.
Each is a single statement run in autocommit (its own transaction, one round trip); asyncpg prepares each
SQL text once per connection and keeps it in its statement cache. The connections come from a lean pool
(asyncpg_pool.py) that opens them on demand, as SQLAlchemy's does.

The statements mean exactly what sql.py's SQLAlchemy statements mean (`_LIVE`, `_OWNER_EXISTS`), on the
same `timestamptz` columns. Driver errors become store errors through runners.py's one table: a stale
pooled connection (after a database restart) fails its call as StoreUnavailable and is replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from authsvc.store.asyncpg_pool import ConnectionPool
from authsvc.store.interface import (
    NotFound,
    RotatedSession,
    Rotation,
    Session,
    SessionStanding,
    StoreUnavailable,
)
from authsvc.store.runners import raise_store_error

# $1 session id, $2 spent generation, $3 spent hash, $4 new hash, $5 now, $6 new expiry. The join with the
# owner's row is `_OWNER_EXISTS` and returns the owner's claims in the same statement; the session's
# other columns are known from the arguments.
_ROTATE = (
    "UPDATE sessions SET generation = sessions.generation + 1, token_hash = $4, previous_token_hash = $3,"
    " refreshed_at = $5, last_used_at = $5, expires_at = $6"
    " FROM users"
    " WHERE sessions.id = $1 AND sessions.generation = $2 AND sessions.token_hash = $3"
    " AND sessions.revoked_at IS NULL AND sessions.expires_at > $5 AND users.id = sessions.user_id"
    " RETURNING sessions.user_id, sessions.created_at, sessions.user_agent, sessions.ip_address,"
    " users.email, users.role, users.email_verified_at IS NOT NULL"
)
# $1 session id, $2 now, $3 reason[, $4 current token hash]
_REVOKE = (
    "UPDATE sessions SET revoked_at = $2, revoked_reason = $3, revocation_room = NULL"
    " WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2 RETURNING user_id"
)
_REVOKE_CURRENT = (
    "UPDATE sessions SET revoked_at = $2, revoked_reason = $3, revocation_room = NULL"
    " WHERE id = $1 AND token_hash = $4 AND revoked_at IS NULL AND expires_at > $2"
    " AND EXISTS (SELECT 1 FROM users WHERE users.id = sessions.user_id)"
    " RETURNING user_id"
)
# $1 user id, $2 now, $3 reason
_REVOKE_ALL = (
    "UPDATE sessions SET revoked_at = $2, revoked_reason = $3, revocation_room = NULL"
    " WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2"
)
_SELECT = (
    "SELECT id, user_id, generation, token_hash, previous_token_hash, created_at, refreshed_at, last_used_at,"
    " expires_at, revoked_at, revoked_reason, user_agent, ip_address"
    " FROM sessions WHERE id = $1 AND EXISTS (SELECT 1 FROM users WHERE users.id = sessions.user_id)"
)
# $1 session id, $2 now
_STANDING = (
    "SELECT user_id, revoked_at IS NOT NULL, expires_at <= $2"
    " FROM sessions WHERE id = $1 AND EXISTS (SELECT 1 FROM users WHERE users.id = sessions.user_id)"
)
# $1 user id, $2 now
_LIST_LIVE = (
    "SELECT id, user_id, generation, token_hash, previous_token_hash, created_at, refreshed_at, last_used_at,"
    " expires_at, revoked_at, revoked_reason, user_agent, ip_address"
    " FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2"
    " ORDER BY created_at DESC, id"
)


def _aware(value: datetime) -> datetime:
    # asyncpg would take a naive datetime as UTC; the store refuses it, as schema.py's UtcDateTime does.
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store: pass UTC-aware times")
    return value


def _session(row: Any) -> Session:
    # asyncpg returns timestamptz as UTC-aware datetimes, bytea as bytes.
    return Session(*row)


class PostgresHotPath:
    """The hot session statements on their own connections (asyncpg_pool.py); close() closes them."""

    def __init__(self, pool: ConnectionPool, timeout_seconds: float) -> None:
        self._pool = pool
        self._timeout = timeout_seconds
        self._closed = False

    @classmethod
    def open(
        cls, connect_kwargs: Mapping[str, Any], *, pool_size: int, timeout_seconds: float
    ) -> PostgresHotPath:
        """Connections made with `connect_kwargs` (asyncpg.connect's, as SQLAlchemy's dialect derives them
        from the URL) when first needed, so a database that is down fails calls, not this."""
        return cls(
            ConnectionPool(connect_kwargs, size=pool_size, timeout_seconds=timeout_seconds), timeout_seconds
        )

    async def _fetch(self, sql: str, *args: Any) -> Any:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        try:
            async with asyncio.timeout(self._timeout), self._pool.connection() as connection:
                return await connection.fetch(sql, *args)
        except Exception as exc:
            raise_store_error(exc)

    async def _execute(self, sql: str, *args: Any) -> str:
        if self._closed:
            raise StoreUnavailable("the store is closed")
        try:
            async with asyncio.timeout(self._timeout), self._pool.connection() as connection:
                return str(await connection.execute(sql, *args))
        except Exception as exc:
            raise_store_error(exc)

    async def rotate_session(self, rotation: Rotation) -> RotatedSession | None:
        now, expires_at = _aware(rotation.now), _aware(rotation.expires_at)
        rows = await self._fetch(
            _ROTATE,
            rotation.session_id,
            rotation.generation,
            rotation.token_hash,
            rotation.new_token_hash,
            now,
            expires_at,
        )
        if not rows:
            return None
        user_id, created_at, user_agent, ip_address, email, role, email_verified = rows[0]
        # What the database now holds, in the form it returns it (UTC).
        refreshed_at = now.astimezone(UTC)
        session = Session(
            id=rotation.session_id,
            user_id=user_id,
            generation=rotation.generation + 1,
            token_hash=bytes(rotation.new_token_hash),
            previous_token_hash=bytes(rotation.token_hash),
            created_at=created_at,
            refreshed_at=refreshed_at,
            last_used_at=refreshed_at,
            expires_at=expires_at.astimezone(UTC),
            revoked_at=None,
            revoked_reason=None,
            user_agent=user_agent,
            ip_address=ip_address,
        )
        return RotatedSession(session, email, role, email_verified)

    async def revoke_session(
        self, session_id: str, reason: str, now: datetime, *, token_hash: bytes | None = None
    ) -> str | None:
        if token_hash is None:
            rows = await self._fetch(_REVOKE, session_id, _aware(now), reason)
        else:
            rows = await self._fetch(_REVOKE_CURRENT, session_id, _aware(now), reason, token_hash)
        return str(rows[0][0]) if rows else None

    async def revoke_all_sessions(self, user_id: str, reason: str, now: datetime) -> int:
        status = await self._execute(_REVOKE_ALL, user_id, _aware(now), reason)
        return int(status.rpartition(" ")[2])  # "UPDATE <count>"

    async def get_session(self, session_id: str) -> Session:
        rows = await self._fetch(_SELECT, session_id)
        if not rows:
            raise NotFound("no such session")
        return _session(rows[0])

    async def session_standing(self, session_id: str, now: datetime) -> SessionStanding:
        rows = await self._fetch(_STANDING, session_id, _aware(now))
        if not rows:
            raise NotFound("no such session")
        user_id, revoked, expired = rows[0]
        return SessionStanding(user_id, revoked, expired)

    async def list_sessions(self, user_id: str, now: datetime) -> list[Session]:
        return [_session(row) for row in await self._fetch(_LIST_LIVE, user_id, _aware(now))]

    async def close(self) -> None:
        """Close the connections once the calls in flight have given theirs back."""
        self._closed = True
        await self._pool.close()
