"""What operators do to accounts: disable and enable them, list and show them, set their role.

The same rules serve the admin-only RPC (SetUserDisabled) and the `authsvc users` commands. The RPC's
caller must have the `admin` role *in the users table* at the moment of the call: the role claim of an
access token is what the row said when it was minted, so a demoted admin's token must not still work.

Disabling revokes every live session of the account in the same transaction as it sets `disabled_at`,
and the live-session check reads the store on every call, so the account's refresh and access tokens
are refused at once by every replica; Login answers ACCOUNT_DISABLED until it is enabled again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from authsvc.clock import Clock
from authsvc.domain import audit
from authsvc.domain.account import Profile
from authsvc.domain.audit import ClientInfo
from authsvc.domain.emails import normalise_email
from authsvc.domain.errors import AdminOnly, InvalidRequest, TokenInvalid, UserNotFound
from authsvc.domain.outage import reports_store_outage
from authsvc.domain.sessions import Caller
from authsvc.store import NotFound, Store, User

ADMIN_ROLE = "admin"
USER_ROLE = "user"
ROLES = (ADMIN_ROLE, USER_ROLE)
OPERATOR = ClientInfo()  # the `authsvc users` commands: no client address, no request id


@dataclass(frozen=True)
class AccountRecord:
    """An account as operators see it: its profile and when it was verified and disabled."""

    profile: Profile
    email_verified_at: datetime | None
    disabled_at: datetime | None

    @classmethod
    def of(cls, user: User) -> AccountRecord:
        return cls(Profile.of(user), user.email_verified_at, user.disabled_at)


@dataclass(frozen=True)
class AccountDetails:
    """An account and how many live sessions it has."""

    account: AccountRecord
    live_sessions: int


@dataclass(frozen=True)
class DisabledOutcome:
    """What disabling or enabling did."""

    account: AccountRecord
    revoked_sessions: int


class AdminService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    @reports_store_outage
    async def set_disabled_by(
        self, caller: Caller, email: str, disabled: bool, client: ClientInfo
    ) -> DisabledOutcome:
        """`set_disabled` for a caller whose role in the users table is `admin` (else AdminOnly)."""
        await self._require_admin(caller, client)
        return await self.set_disabled(email, disabled, client)

    @reports_store_outage
    async def set_disabled(
        self, email: str, disabled: bool, client: ClientInfo = OPERATOR
    ) -> DisabledOutcome:
        """Disable the account of `email` (revoking every live session of it) or enable it again.
        Raise InvalidEmail or UserNotFound."""
        normalised = normalise_email(email)
        try:
            change = await self._store.set_user_disabled(normalised, disabled, self._clock())
        except NotFound as exc:
            raise UserNotFound() from exc
        if disabled:
            audit.record(
                audit.ACCOUNT_DISABLED,
                client,
                user_id=change.user.id,
                count=change.revoked_sessions,
                level=logging.WARNING,
            )
        else:
            audit.record(audit.ACCOUNT_ENABLED, client, user_id=change.user.id)
        return DisabledOutcome(AccountRecord.of(change.user), change.revoked_sessions)

    @reports_store_outage
    async def list_accounts(self, limit: int) -> list[AccountRecord]:
        """Up to `limit` accounts, oldest first."""
        if limit <= 0:
            raise InvalidRequest("limit must be positive")
        return [AccountRecord.of(user) for user in await self._store.list_users(limit)]

    @reports_store_outage
    async def show(self, email: str) -> AccountDetails:
        """The account of `email` with its live session count. Raise InvalidEmail or UserNotFound."""
        user = await self._user(email)
        live = await self._store.list_sessions(user.id, self._clock())
        return AccountDetails(AccountRecord.of(user), len(live))

    @reports_store_outage
    async def set_role(self, email: str, role: str, client: ClientInfo = OPERATOR) -> AccountRecord:
        """Give the account of `email` the role `admin` or `user`. It rules admin RPCs from the next call;
        access tokens already issued keep their `role` claim until they expire."""
        if role not in ROLES:
            raise InvalidRequest(f"role must be one of {', '.join(ROLES)}")
        try:
            user = await self._store.set_user_role(normalise_email(email), role)
        except NotFound as exc:
            raise UserNotFound() from exc
        audit.record(audit.ROLE_CHANGED, client, user_id=user.id, level=logging.WARNING)
        return AccountRecord.of(user)

    async def _user(self, email: str) -> User:
        try:
            return await self._store.get_user_by_email(normalise_email(email))
        except NotFound as exc:
            raise UserNotFound() from exc

    async def _require_admin(self, caller: Caller, client: ClientInfo) -> None:
        try:
            user = await self._store.get_user(caller.user_id)
        except NotFound as exc:  # deleted since the token was checked
            raise TokenInvalid() from exc
        if user.role != ADMIN_ROLE:
            audit.record(
                audit.ADMIN_DENIED,
                client,
                user_id=caller.user_id,
                session_id=caller.session_id,
                level=logging.WARNING,
            )
            raise AdminOnly()
