"""The store interface: what the domain may ask of persistence, and what each call guarantees.

Every method is one transaction: it commits before it returns, or changes nothing and raises.
Every datetime passed in or returned is timezone-aware UTC. Methods raise only the errors below;
driver errors never leak out. `StoreUnavailable` may be retried by the caller; nothing else may.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class StoreError(Exception):
    """Base of every error the store raises."""


class NotFound(StoreError):
    """The row asked for does not exist."""


class AlreadyExists(StoreError):
    """A unique value (an email, an id) is taken."""


class Conflict(StoreError):
    """A compare-and-set lost against a concurrent change."""


class StoreUnavailable(StoreError):
    """The database cannot be reached, timed out, or rolled the transaction back (a deadlock victim);
    the operation did not commit and may be retried."""


@dataclass(frozen=True)
class User:
    id: str
    email: str
    password_hash: str
    role: str
    created_at: datetime


@dataclass(frozen=True)
class NewSession:
    id: str
    user_id: str
    token_hash: bytes
    created_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip_address: str | None


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    generation: int
    token_hash: bytes
    previous_token_hash: bytes | None
    created_at: datetime
    refreshed_at: datetime
    last_used_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None
    user_agent: str | None
    ip_address: str | None

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


@dataclass(frozen=True)
class Rotation:
    """The compare-and-set that spends generation `generation` of a session's refresh token."""

    session_id: str
    generation: int
    token_hash: bytes
    new_token_hash: bytes
    now: datetime
    expires_at: datetime


@dataclass(frozen=True)
class RotatedSession:
    """A session after a successful rotation, with the owner's claims for the new access token."""

    session: Session
    owner_email: str
    owner_role: str


class UserStore(Protocol):
    async def create_user(self, user: User) -> None:
        """Insert a user. Raise AlreadyExists when the (already normalised) email or id is taken."""

    async def get_user(self, user_id: str) -> User:
        """Raise NotFound when there is no such user."""

    async def get_user_by_email(self, email: str) -> User:
        """Look up by normalised email; raise NotFound when absent."""

    async def rotate_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        """Replace the hash only if it is still `old_hash` (compare-and-set); return whether it changed."""


class SessionStore(Protocol):
    async def create_session(self, session: NewSession) -> Session:
        """Insert a session at generation 0. Raise NotFound when the user does not exist."""

    async def get_session(self, session_id: str) -> Session:
        """Raise NotFound when there is no such session, or its user no longer exists (revoked
        sessions are still returned)."""

    async def list_sessions(self, user_id: str, now: datetime) -> list[Session]:
        """The user's live sessions (not revoked, not expired), newest first."""

    async def rotate_session(self, rotation: Rotation) -> RotatedSession | None:
        """Spend the refresh token of `rotation.generation` in one compare-and-set UPDATE.

        Succeeds only if the session is live, its user exists, and it is still at that generation with
        that token hash: the generation goes up by one, the new hash becomes current and the spent one
        is kept as `previous_token_hash`, and refreshed/last-used times become `now`. Of any number of
        concurrent calls with the same arguments exactly one wins; the others get None and change nothing.
        """

    async def revoke_session(
        self, session_id: str, reason: str, now: datetime, *, token_hash: bytes | None = None
    ) -> str | None:
        """Mark one live session revoked and return its user's id; None when none matched (missing,
        already revoked, expired, or, when `token_hash` is given, holding another current token or no
        longer having a user). Rows are kept."""

    async def revoke_user_session(self, user_id: str, session_id: str, reason: str, now: datetime) -> bool:
        """Revoke one live session only if it belongs to `user_id`; False when none matched."""

    async def revoke_all_sessions(self, user_id: str, reason: str, now: datetime) -> int:
        """Revoke every live session of the user in one statement; return how many."""

    async def delete_sessions_before(self, cutoff: datetime, batch_size: int) -> int:
        """Delete up to `batch_size` sessions expired or revoked before `cutoff`; return how many."""


class Store(UserStore, SessionStore, Protocol):
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers a trivial query."""

    async def close(self) -> None:
        """Release connections and threads; pending calls finish first."""
