"""The caller's own account: the profile, a new password, and deleting the account.

Changing the password and deleting the account ask for the password again: an access token alone (a
stolen one, or a device left logged in) must not take the account over or destroy it. Those checks are
throttled by the login throttle exactly as Login's are (counted before the bcrypt work under the
account's email and the caller's address; a wrong password stays counted, a right one gives its attempt
back), so they open no second door for guessing.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from authsvc.clock import Clock
from authsvc.domain import audit
from authsvc.domain.audit import ClientInfo
from authsvc.domain.errors import DisplayNameInvalid, InvalidCredentials, InvalidRequest, TokenInvalid
from authsvc.domain.outage import reports_store_outage
from authsvc.domain.passwords import PasswordHasher, check_new_password
from authsvc.domain.sessions import Caller
from authsvc.domain.throttling import LoginAttempt, LoginThrottle
from authsvc.store import NotFound, Store, User

REASON_PASSWORD_CHANGED = "password_changed"  # noqa: S105 (a revocation reason, not a secret)
MAX_DISPLAY_NAME = 100
# Control characters (Cc), and the line and paragraph separators that act as line breaks: a name is
# shown on one line, in pages and in mail. Format characters (Cf) stay allowed: emoji sequences need
# the zero-width joiner.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


@dataclass(frozen=True)
class Profile:
    """What GetProfile shows of an account."""

    user_id: str
    email: str
    email_verified: bool
    display_name: str
    role: str
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> Profile:
        return cls(user.id, user.email, user.email_verified, user.display_name, user.role, user.created_at)


def check_display_name(display_name: str) -> str:
    """The name as stored: trimmed, at most MAX_DISPLAY_NAME characters, no control characters ("" clears
    it). Raise DisplayNameInvalid otherwise."""
    trimmed = display_name.strip()
    if len(trimmed) > MAX_DISPLAY_NAME:
        raise DisplayNameInvalid()
    if any(unicodedata.category(character) in _REFUSED_CATEGORIES for character in trimmed):
        raise DisplayNameInvalid("Display name must not contain control characters")
    return trimmed


class AccountService:
    def __init__(
        self, store: Store, hasher: PasswordHasher, clock: Clock, *, throttle: LoginThrottle | None = None
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._clock = clock
        self._throttle = throttle or LoginThrottle.off(clock)

    @reports_store_outage
    async def profile(self, caller: Caller) -> Profile:
        """The caller's profile, read from the account's row (not from the token's claims)."""
        return Profile.of(await self._owner(caller))

    @reports_store_outage
    async def update_profile(self, caller: Caller, display_name: str, client: ClientInfo) -> Profile:
        """Set the caller's display name (DisplayNameInvalid unless `check_display_name` takes it)."""
        checked = check_display_name(display_name)
        try:
            updated = await self._store.update_display_name(caller.user_id, checked)
        except NotFound as exc:
            raise TokenInvalid() from exc
        audit.record(audit.PROFILE_UPDATED, client, user_id=caller.user_id, session_id=caller.session_id)
        return Profile.of(updated)

    @reports_store_outage
    async def change_password(
        self, caller: Caller, current_password: str, new_password: str, client: ClientInfo
    ) -> int:
        """Check the current password, set the new one (hashed at the current cost) and revoke every other
        live session of the caller in the same transaction; the caller's own stays. Return how many were
        revoked.

        Raise WeakPassword or PasswordTooLong (the new password, before any bcrypt work), InvalidRequest,
        Throttled, or InvalidCredentials (a wrong current password, or one changed meanwhile).
        """
        encoded = check_new_password(new_password)
        if not current_password:
            raise InvalidRequest("current_password is required")
        user = await self._owner(caller)
        attempt = await self._check_password(user, current_password, caller, client)
        await self._throttle.record_success(attempt)
        new_hash = await self._hasher.hash(encoded)
        revoked = await self._store.change_password(
            user.id,
            old_hash=user.password_hash,
            new_hash=new_hash,
            keep_session_id=caller.session_id,
            reason=REASON_PASSWORD_CHANGED,
            now=self._clock(),
        )
        if revoked is None:  # another change or a reset got there first: the password checked is gone
            raise InvalidCredentials("Current password is incorrect")
        audit.record(
            audit.PASSWORD_CHANGED, client, user_id=user.id, session_id=caller.session_id, count=revoked
        )
        return revoked

    @reports_store_outage
    async def delete_account(self, caller: Caller, password: str, client: ClientInfo) -> None:
        """Check the password, then delete the account in one transaction: its row, sessions, tokens and
        queued mail. Its access tokens are refused from then on (their session is gone). The audit event
        keeps the user id only.

        Raise InvalidRequest, PasswordTooLong, Throttled, or InvalidCredentials.
        """
        if not password:
            raise InvalidRequest("password is required")
        user = await self._owner(caller)
        attempt = await self._check_password(user, password, caller, client)
        if not await self._store.delete_user(user.id, user.password_hash):
            raise InvalidCredentials("Password is incorrect")  # changed meanwhile, or already deleted
        await self._throttle.record_success(attempt, remember_address=False)
        audit.record(audit.ACCOUNT_DELETED, client, user_id=user.id, session_id=caller.session_id)

    async def _owner(self, caller: Caller) -> User:
        try:
            return await self._store.get_user(caller.user_id)
        except NotFound as exc:  # deleted since the token was checked
            raise TokenInvalid() from exc

    async def _check_password(
        self, user: User, password: str, caller: Caller, client: ClientInfo
    ) -> LoginAttempt:
        """Count an attempt on the login throttle (raise Throttled), then check the password (raise
        InvalidCredentials, leaving the attempt counted, or PasswordTooLong)."""
        attempt = await self._throttle.begin_attempt(user.email, client)
        if not await self._hasher.verify(password, user.password_hash):
            audit.record(
                audit.PASSWORD_CHECK_FAILED,
                client,
                user_id=user.id,
                session_id=caller.session_id,
                level=logging.WARNING,
            )
            raise InvalidCredentials("Password is incorrect")
        return attempt
