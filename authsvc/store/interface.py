"""The store interface: what the domain may ask of persistence, and what each call guarantees.

Every method is one transaction: it commits before it returns, or changes nothing and raises.
Every datetime passed in or returned is timezone-aware UTC. Methods raise only the errors below;
driver errors never leak out. `StoreUnavailable` may be retried by the caller; nothing else may.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from authsvc.store.outbox import OutgoingMail


class StoreError(Exception):
    """Base of every error the store raises."""


class NotFound(StoreError):
    """The row asked for does not exist."""


class AlreadyExists(StoreError):
    """A unique value (an email, an id) is taken."""


class Conflict(StoreError):
    """A compare-and-set lost against a concurrent change."""


class UserDisabled(StoreError):
    """The user's account is disabled: no session may be opened for it."""


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
    # The account lifecycle (migration 0005); a new account has none of them.
    display_name: str = ""
    email_verified_at: datetime | None = None
    disabled_at: datetime | None = None

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


# The revocation reason of the sessions `set_user_disabled` revokes.
ACCOUNT_DISABLED_REASON = "account_disabled"


@dataclass(frozen=True)
class DisabledChange:
    """What `set_user_disabled` did: the user as now stored, and how many live sessions it revoked."""

    user: User
    revoked_sessions: int


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
class SessionStanding:
    """Whether a session still stands at a moment: what checking an access token needs, and no more."""

    user_id: str
    revoked: bool
    expired: bool


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
    owner_email_verified: bool = False


class UserStore(Protocol):
    async def create_user(self, user: User) -> None:
        """Insert a user. Raise AlreadyExists when the (already normalised) email or id is taken."""

    async def get_user(self, user_id: str) -> User:
        """Raise NotFound when there is no such user."""

    async def get_user_by_email(self, email: str) -> User:
        """Look up by normalised email; raise NotFound when absent."""

    async def rotate_password_hash(self, user_id: str, old_hash: str, new_hash: str) -> bool:
        """Replace the hash only if it is still `old_hash` (compare-and-set); return whether it changed."""

    # -- the account lifecycle: profile, password change, deletion, and what operators do ---------------

    async def update_display_name(self, user_id: str, display_name: str) -> User:
        """Set the user's display name (already checked by the domain); return the user as now stored.
        Raise NotFound when there is no such user."""

    async def change_password(
        self, user_id: str, *, old_hash: str, new_hash: str, keep_session_id: str, reason: str, now: datetime
    ) -> int | None:
        """In one transaction: replace the hash only if it is still `old_hash` (compare-and-set), revoke
        every live session of the user but `keep_session_id` with `reason`, and void the user's unspent
        reset tokens (a link mailed before the change must not undo it). Return how many were revoked,
        or None, changing nothing, when the user is gone or the hash is no longer `old_hash`."""

    async def delete_user(self, user_id: str, password_hash: str) -> bool:
        """In one transaction, only if the user's hash is still `password_hash` (the one the domain
        checked): delete the user's row with their sessions and account tokens, and every mail queued for
        their email. Return False, deleting nothing, when the user is gone or the hash changed."""

    async def set_user_disabled(self, email: str, disabled: bool, now: datetime) -> DisabledChange:
        """Disable (`disabled_at` = `now`, kept when already disabled) or enable (`disabled_at` cleared)
        the account of the normalised `email`. Disabling revokes every live session of the user (reason
        ACCOUNT_DISABLED_REASON) in the same transaction, after the user's row is written: a concurrent
        `create_session` either commits first (its session is then revoked here) or sees the account
        disabled. Raise NotFound when no account has the email."""

    async def set_user_role(self, email: str, role: str) -> User:
        """Set the role of the account of the normalised `email`; return the user as now stored. Raise
        NotFound when no account has the email."""

    async def list_users(self, limit: int) -> list[User]:
        """Up to `limit` users, oldest account first (ties by id)."""


class SessionStore(Protocol):
    async def create_session(self, session: NewSession) -> Session:
        """Insert a session at generation 0. Raise NotFound when the user does not exist, UserDisabled when
        their account is disabled (decided atomically with the insert, see `set_user_disabled`)."""

    async def get_session(self, session_id: str) -> Session:
        """Raise NotFound when there is no such session, or its user no longer exists (revoked
        sessions are still returned)."""

    async def session_standing(self, session_id: str, now: datetime) -> SessionStanding:
        """The session's owner, whether it is revoked, and whether it has expired at `now` (`expires_at` <=
        `now`): `get_session`'s answer narrowed to what every authenticated call checks. Raise NotFound as
        `get_session` does."""

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


# -- password-reset and email-verification tokens (table account_tokens), mailed with their token ------

RESET_TOKEN = "reset"  # noqa: S105 (a kind of token, not a secret)
VERIFY_TOKEN = "verify"  # noqa: S105


@dataclass(frozen=True)
class AccountToken:
    """A reset or verification token as stored: its SHA-256, never the token itself (the method that
    writes it says which kind it is)."""

    token_hash: bytes
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class PasswordReset:
    """What `reset_password` did: whose password it set, and how many live sessions it revoked."""

    user_id: str
    revoked_sessions: int


class AccountTokenStore(Protocol):
    """Each method is one transaction; a token and the mail carrying it commit together or not at all
    (the mail goes to the outbox, authsvc/store/outbox.py, that the courier sends from)."""

    async def create_reset_token(self, email: str, token: AccountToken, mail: OutgoingMail) -> str | None:
        """If an enabled account has the normalised `email`: delete its earlier reset tokens (a newer one
        voids them), insert `token` for it and queue `mail`; return the user's id. Else None, changing
        nothing. Both cases run the same statements in one transaction, so that ForgotPassword's time does
        not tell whether an account exists."""

    async def create_verify_token(self, user_id: str, token: AccountToken, mail: OutgoingMail) -> bool:
        """If the user exists, is enabled and has not verified their email: insert `token` for them and
        queue `mail`; return True. Else False, changing nothing."""

    async def reset_password(
        self, token_hash: bytes, password_hash: str, reason: str, now: datetime
    ) -> PasswordReset | None:
        """Spend a reset token: when `token_hash` is a reset token, unused, unexpired at `now`, of an enabled
        user, mark it used, set the user's password hash, mark their email verified (the link reached
        them) if it was not, and revoke every live session of theirs with `reason`. Else None, changing
        nothing. Of concurrent calls with one token exactly one wins."""

    async def verify_email(self, token_hash: bytes, now: datetime) -> str | None:
        """Spend a verification token: when `token_hash` is a verify token, unused, unexpired at `now`, of
        an enabled user, mark it used and the user's email verified at `now` (kept when it already was);
        return the user's id. Else None, changing nothing. Of concurrent calls exactly one wins."""

    async def delete_account_tokens_before(self, cutoff: datetime, batch_size: int) -> int:
        """Delete up to `batch_size` account tokens that expired before `cutoff`; return how many."""


class Store(UserStore, SessionStore, AccountTokenStore, Protocol):
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers a trivial query."""

    async def close(self) -> None:
        """Release connections and threads; pending calls finish first."""
