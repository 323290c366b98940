"""The `Store` in memory: dictionaries on one event loop, for fast tests of the domain's rules.

It keeps every guarantee of interface.py, checked by the same conformance suite as the SQL store
(tests/store/). Each call first yields to the event loop once, as a database round trip would, so
concurrent callers interleave between calls; the read-modify-write that follows has no await in it, so on
one loop it is atomic, and of concurrent compare-and-sets exactly one wins. Nothing is persisted, and it
serves one process only: it is no deployment's store.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

from authsvc.store.interface import (
    ACCOUNT_DISABLED_REASON,
    RESET_TOKEN,
    VERIFY_TOKEN,
    AccountToken,
    AlreadyExists,
    DisabledChange,
    NewSession,
    NotFound,
    PasswordReset,
    RotatedSession,
    Rotation,
    Session,
    SessionStanding,
    StoreUnavailable,
    User,
    UserDisabled,
)
from authsvc.store.outbox import OutgoingMail
from authsvc.store.outbox_memory import MemoryOutbox
from authsvc.store.schema import sessions as sessions_table

# The SQL columns' lengths, so both stores fit overlong values alike (sql.py `_fit`).
_USER_AGENT_LENGTH: int | None = getattr(sessions_table.c.user_agent.type, "length", None)
_IP_ADDRESS_LENGTH: int | None = getattr(sessions_table.c.ip_address.type, "length", None)


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; raise ValueError for a naive datetime, as the SQL store does."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the store: pass UTC-aware times")
    return moment.astimezone(UTC)


def _fit(value: str | None, length: int | None, *, cut: bool) -> str | None:
    if value is None or length is None or len(value) <= length:
        return value
    return value[:length] if cut else None


def _is_live(session: Session, now: datetime) -> bool:
    return session.revoked_at is None and session.expires_at > now


@dataclasses.dataclass(frozen=True)
class _StoredAccountToken:
    """A row of account_tokens."""

    token: AccountToken
    kind: str
    user_id: str
    used_at: datetime | None = None


def _is_reset_of(row: _StoredAccountToken, user_id: str) -> bool:
    return row.user_id == user_id and row.kind == RESET_TOKEN


class MemoryStore:
    """`Store` over dictionaries; see interface.py for each method's guarantees."""

    def __init__(self) -> None:
        self._users: dict[str, User] = {}
        self._user_ids_by_email: dict[str, str] = {}
        self._sessions: dict[str, Session] = {}  # in insertion order
        self._closed = False
        self._account_tokens: dict[bytes, _StoredAccountToken] = {}
        # The mail queued with account tokens, as `SqlOutbox` is the SQL store's: a courier sends from it.
        self.outbox = MemoryOutbox()

    async def _enter(self) -> None:
        """Yield once, like a round trip; then refuse calls on a closed store, like the SQL runners."""
        await asyncio.sleep(0)
        if self._closed:
            raise StoreUnavailable("the store is closed")

    async def create_user(self, user: User) -> None:
        await self._enter()
        created_at = as_utc(user.created_at)
        # Emails are compared exactly, as the SQL unique index does: normalising is the domain's job.
        if user.id in self._users or user.email in self._user_ids_by_email:
            raise AlreadyExists("a unique value is taken")
        self._users[user.id] = dataclasses.replace(user, created_at=created_at)
        self._user_ids_by_email[user.email] = user.id

    async def get_user(self, user_id: str) -> User:
        await self._enter()
        return self._user(user_id)

    async def get_user_by_email(self, email: str) -> User:
        await self._enter()
        user_id = self._user_ids_by_email.get(email)
        if user_id is None:
            raise NotFound("no such user")
        return self._user(user_id)

    def _user(self, user_id: str) -> User:
        user = self._users.get(user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    async def rotate_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        await self._enter()
        user = self._users.get(user_id)
        if user is None or user.password_hash != old_hash:
            return False
        self._users[user_id] = dataclasses.replace(user, password_hash=new_hash)
        return True

    async def create_session(self, session: NewSession) -> Session:
        await self._enter()
        created_at, expires_at = as_utc(session.created_at), as_utc(session.expires_at)
        if session.user_id not in self._users:
            raise NotFound("a referenced row does not exist")
        if self._users[session.user_id].disabled_at is not None:
            raise UserDisabled("the user's account is disabled")
        if session.id in self._sessions:
            raise AlreadyExists("a unique value is taken")
        created = Session(
            id=session.id,
            user_id=session.user_id,
            generation=0,
            token_hash=bytes(session.token_hash),
            previous_token_hash=None,
            created_at=created_at,
            refreshed_at=created_at,
            last_used_at=created_at,
            expires_at=expires_at,
            revoked_at=None,
            revoked_reason=None,
            # A cut address would be another address, so an overlong one is dropped instead.
            user_agent=_fit(session.user_agent, _USER_AGENT_LENGTH, cut=True),
            ip_address=_fit(session.ip_address, _IP_ADDRESS_LENGTH, cut=False),
        )
        self._sessions[created.id] = created
        return created

    async def get_session(self, session_id: str) -> Session:
        await self._enter()
        session = self._owned_session(session_id)
        if session is None:
            raise NotFound("no such session")
        return session

    async def session_standing(self, session_id: str, now: datetime) -> SessionStanding:
        now = as_utc(now)
        session = await self.get_session(session_id)
        return SessionStanding(session.user_id, session.revoked_at is not None, session.expires_at <= now)

    def _owned_session(self, session_id: str) -> Session | None:
        """The session, unless it is missing or its owner is (as sql.py's `_OWNER_EXISTS`)."""
        session = self._sessions.get(session_id)
        return session if session is not None and session.user_id in self._users else None

    async def list_sessions(self, user_id: str, now: datetime) -> list[Session]:
        await self._enter()
        now = as_utc(now)
        live = [s for s in self._sessions.values() if s.user_id == user_id and _is_live(s, now)]
        # Newest first, ties by id: the SQL store's ORDER BY created_at DESC, id.
        live.sort(key=lambda session: session.id)
        live.sort(key=lambda session: session.created_at, reverse=True)
        return live

    async def rotate_session(self, rotation: Rotation) -> RotatedSession | None:
        await self._enter()
        now, expires_at = as_utc(rotation.now), as_utc(rotation.expires_at)
        session = self._owned_session(rotation.session_id)
        if (
            session is None
            or session.generation != rotation.generation
            or session.token_hash != rotation.token_hash
            or not _is_live(session, now)
        ):
            return None
        rotated = dataclasses.replace(
            session,
            generation=session.generation + 1,
            token_hash=bytes(rotation.new_token_hash),
            previous_token_hash=bytes(rotation.token_hash),
            refreshed_at=now,
            last_used_at=now,
            expires_at=expires_at,
        )
        self._sessions[session.id] = rotated
        owner = self._users[session.user_id]
        return RotatedSession(
            session=rotated,
            owner_email=owner.email,
            owner_role=owner.role,
            owner_email_verified=owner.email_verified_at is not None,
        )

    async def revoke_session(
        self, session_id: str, reason: str, now: datetime, *, token_hash: bytes | None = None
    ) -> str | None:
        await self._enter()
        now = as_utc(now)
        if token_hash is None:
            session = self._sessions.get(session_id)
        else:
            # With a token, the owner must exist too (`_REVOKE_CURRENT` in hot_sqlite.py and hot_postgres.py).
            session = self._owned_session(session_id)
            if session is not None and session.token_hash != token_hash:
                session = None
        if session is None or not _is_live(session, now):
            return None
        self._revoke(session, reason, now)
        return session.user_id

    async def revoke_user_session(self, user_id: str, session_id: str, reason: str, now: datetime) -> bool:
        await self._enter()
        now = as_utc(now)
        session = self._sessions.get(session_id)
        if session is None or session.user_id != user_id or not _is_live(session, now):
            return False
        self._revoke(session, reason, now)
        return True

    async def revoke_all_sessions(self, user_id: str, reason: str, now: datetime) -> int:
        await self._enter()
        now = as_utc(now)
        live = [s for s in self._sessions.values() if s.user_id == user_id and _is_live(s, now)]
        for session in live:
            self._revoke(session, reason, now)
        return len(live)

    def _revoke(self, session: Session, reason: str, now: datetime) -> None:
        self._sessions[session.id] = dataclasses.replace(session, revoked_at=now, revoked_reason=reason)

    async def delete_sessions_before(self, cutoff: datetime, batch_size: int) -> int:
        await self._enter()
        cutoff = as_utc(cutoff)
        doomed = [
            session.id
            for session in self._sessions.values()
            if session.expires_at < cutoff or (session.revoked_at is not None and session.revoked_at < cutoff)
        ][: max(0, batch_size)]
        for session_id in doomed:
            del self._sessions[session_id]
        return len(doomed)

    async def ping(self) -> None:
        await self._enter()

    async def close(self) -> None:
        """Refuse every later call with StoreUnavailable, as a closed SQL store does; the data stays."""
        self._closed = True

    # -- the account lifecycle: profile, password change, deletion, and what operators do ---------------

    async def update_display_name(self, user_id: str, display_name: str) -> User:
        await self._enter()
        updated = dataclasses.replace(self._user(user_id), display_name=display_name)
        self._users[user_id] = updated
        return updated

    async def change_password(
        self, user_id: str, *, old_hash: str, new_hash: str, keep_session_id: str, reason: str, now: datetime
    ) -> int | None:
        await self._enter()
        now = as_utc(now)
        user = self._users.get(user_id)
        if user is None or user.password_hash != old_hash:
            return None
        self._users[user_id] = dataclasses.replace(user, password_hash=new_hash)
        others = [
            session
            for session in self._sessions.values()
            if session.user_id == user_id and session.id != keep_session_id and _is_live(session, now)
        ]
        for session in others:
            self._revoke(session, reason, now)
        for earlier in [h for h, row in self._account_tokens.items() if _is_reset_of(row, user_id)]:
            del self._account_tokens[earlier]
        return len(others)

    async def delete_user(self, user_id: str, password_hash: str) -> bool:
        await self._enter()
        user = self._users.get(user_id)
        if user is None or user.password_hash != password_hash:
            return False
        del self._users[user_id]
        del self._user_ids_by_email[user.email]
        # The SQL foreign keys cascade; here the user's sessions and account tokens go by hand.
        for session_id in [s.id for s in self._sessions.values() if s.user_id == user_id]:
            del self._sessions[session_id]
        for token_hash in [h for h, row in self._account_tokens.items() if row.user_id == user_id]:
            del self._account_tokens[token_hash]
        self.outbox.delete_mail_to(user.email)
        return True

    async def set_user_disabled(self, email: str, disabled: bool, now: datetime) -> DisabledChange:
        await self._enter()
        now = as_utc(now)
        user_id = self._user_ids_by_email.get(email)
        if user_id is None:
            raise NotFound("no such user")
        user = self._users[user_id]
        disabled_at = (user.disabled_at or now) if disabled else None
        updated = dataclasses.replace(user, disabled_at=disabled_at)
        self._users[user_id] = updated
        # Enabling revokes nothing: a disabled account has no live session to bring back.
        live = (
            [s for s in self._sessions.values() if s.user_id == user_id and _is_live(s, now)]
            if disabled
            else []
        )
        for session in live:
            self._revoke(session, ACCOUNT_DISABLED_REASON, now)
        return DisabledChange(updated, len(live))

    async def set_user_role(self, email: str, role: str) -> User:
        await self._enter()
        user_id = self._user_ids_by_email.get(email)
        if user_id is None:
            raise NotFound("no such user")
        updated = dataclasses.replace(self._users[user_id], role=role)
        self._users[user_id] = updated
        return updated

    async def list_users(self, limit: int) -> list[User]:
        await self._enter()
        return sorted(self._users.values(), key=lambda user: (user.created_at, user.id))[: max(0, limit)]

    # -- reset and verification tokens, mailed with their token (account_tokens_sql.py's twin) ----------
    # Each method checks, then writes with no await in between: atomic on the loop, like one transaction.

    def _enabled_user(self, user_id: str) -> User | None:
        user = self._users.get(user_id)
        return user if user is not None and user.disabled_at is None else None

    async def create_reset_token(self, email: str, token: AccountToken, mail: OutgoingMail) -> str | None:
        await self._enter()
        user_id = self._user_ids_by_email.get(email)
        if user_id is None or self._enabled_user(user_id) is None:
            return None
        fresh = self._account_token(token, RESET_TOKEN, user_id)
        await self.outbox.enqueue(mail)  # awaits nothing: still the same step
        # A newer reset token voids the older ones (used or not), as the SQL store deletes them.
        for earlier in [h for h, row in self._account_tokens.items() if _is_reset_of(row, user_id)]:
            del self._account_tokens[earlier]
        self._account_tokens[fresh.token.token_hash] = fresh
        return user_id

    async def create_verify_token(self, user_id: str, token: AccountToken, mail: OutgoingMail) -> bool:
        await self._enter()
        user = self._enabled_user(user_id)
        if user is None or user.email_verified_at is not None:
            return False
        fresh = self._account_token(token, VERIFY_TOKEN, user_id)
        await self.outbox.enqueue(mail)  # awaits nothing: still the same step
        self._account_tokens[fresh.token.token_hash] = fresh
        return True

    def _account_token(self, token: AccountToken, kind: str, user_id: str) -> _StoredAccountToken:
        stored = dataclasses.replace(
            token, created_at=as_utc(token.created_at), expires_at=as_utc(token.expires_at)
        )
        if stored.token_hash in self._account_tokens:
            raise AlreadyExists("a unique value is taken")
        return _StoredAccountToken(stored, kind, user_id)

    def _spend(self, token_hash: bytes, kind: str, now: datetime) -> User | None:
        row = self._account_tokens.get(token_hash)
        if row is None or row.kind != kind or row.used_at is not None or row.token.expires_at <= now:
            return None
        # SQL cascades a deleted user's tokens away; here they stay, matched by no user.
        user = self._enabled_user(row.user_id)
        if user is None:
            return None
        self._account_tokens[token_hash] = dataclasses.replace(row, used_at=now)
        return user

    async def reset_password(
        self, token_hash: bytes, password_hash: str, reason: str, now: datetime
    ) -> PasswordReset | None:
        await self._enter()
        now = as_utc(now)
        user = self._spend(token_hash, RESET_TOKEN, now)
        if user is None:
            return None
        self._users[user.id] = dataclasses.replace(
            user, password_hash=password_hash, email_verified_at=user.email_verified_at or now
        )
        live = [s for s in self._sessions.values() if s.user_id == user.id and _is_live(s, now)]
        for session in live:
            self._revoke(session, reason, now)
        return PasswordReset(user.id, len(live))

    async def verify_email(self, token_hash: bytes, now: datetime) -> str | None:
        await self._enter()
        now = as_utc(now)
        user = self._spend(token_hash, VERIFY_TOKEN, now)
        if user is None:
            return None
        self._users[user.id] = dataclasses.replace(user, email_verified_at=user.email_verified_at or now)
        return user.id

    async def delete_account_tokens_before(self, cutoff: datetime, batch_size: int) -> int:
        await self._enter()
        cutoff = as_utc(cutoff)
        doomed = [h for h, row in self._account_tokens.items() if row.token.expires_at < cutoff]
        for token_hash in doomed[: max(0, batch_size)]:
            del self._account_tokens[token_hash]
        return min(len(doomed), max(0, batch_size))
