"""Password reset and email verification: a token mailed as a link, stored only as its SHA-256, spent once.

- ForgotPassword: a reset token (30 minutes by default) for the account of an email, and the mail with its
  link, written in one transaction (the mail goes to the outbox; the courier sends it in the background,
  so the answer never waits on the mail server). A newer token voids the older ones. An unknown email,
  or a disabled account's, gets the same answer after the same work: a token is drawn and hashed, the
  mail composed, the store called once (running the same statements, authsvc/store/account_tokens_sql.py:
  the mail row is written and deleted again) and the courier woken; no row outlives the transaction. The
  courier is woken a moment after the answer (`WAKE_DELAY_SECONDS`), never before it: on SQLite its
  round runs on the event loop, and would delay the answer of a known email by its claim. Throttled per
  email and per address, counted alike for every email.
- ResetPassword: the new password is checked and hashed (at the current bcrypt cost, on the hasher's
  threads) before the one transaction that spends the token, sets the hash and revokes every session of
  the account. Attempts are throttled per address before the bcrypt work; a good token gives its attempt
  back, so the limit is on wrong ones.
- RequestEmailVerification and VerifyEmail: the same for a verification token (24 hours by default), for
  a signed-in user whose email is not verified yet; spending it marks the email verified.

The mails come from an `AccountMails` (authsvc.mail's MailComposer fits; the domain never imports it) and
the courier is told through a `MailQueue` (authsvc/domain/courier.py's Courier fits).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from authsvc.clock import Clock
from authsvc.domain import audit
from authsvc.domain.audit import ClientInfo
from authsvc.domain.emails import normalise_email
from authsvc.domain.errors import ResetTokenInvalid, TokenTooLong, VerificationTokenInvalid
from authsvc.domain.outage import reports_store_outage
from authsvc.domain.passwords import PasswordHasher, check_new_password
from authsvc.domain.sessions import Caller
from authsvc.domain.throttling import RecoveryThrottle
from authsvc.domain.tokens import MAX_TOKEN_LENGTH, token_hash
from authsvc.store import Store
from authsvc.store.interface import AccountToken
from authsvc.store.outbox import OutgoingMail

REASON_PASSWORD_RESET = "password_reset"  # noqa: S105 (the revoked sessions' reason, not a secret)
TOKEN_BYTES = 32  # 256 bits from the OS's CSPRNG: 43 characters in the link
# ForgotPassword wakes the courier after this long, plus up to WAKE_JITTER_SECONDS: well after its answer
# has gone, and at no fixed distance from it. The mail waits that much longer, which nobody notices.
WAKE_DELAY_SECONDS = 0.2
WAKE_JITTER_SECONDS = 0.3


class AccountMails(Protocol):
    """Writes the account mails; `token` goes into the mail's link, `lifetime` into its text."""

    def reset(self, recipient: str, token: str, lifetime: timedelta, now: datetime) -> OutgoingMail: ...

    def verify(self, recipient: str, token: str, lifetime: timedelta, now: datetime) -> OutgoingMail: ...


class MailQueue(Protocol):
    """Told after a mail was committed to the outbox (`queued`), or to look at it anyway (`notify`)."""

    def queued(self, count: int = 1) -> None: ...

    def notify(self) -> None: ...


class NoCourier:
    """A `MailQueue` for services built without a courier: the mail waits in the outbox for one."""

    def queued(self, count: int = 1) -> None:
        pass

    def notify(self) -> None:
        pass


@dataclass(frozen=True)
class TokenLifetimes:
    reset: timedelta
    verify: timedelta


def new_account_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def _check_presented(token: str) -> None:
    """Refuse a token longer than any this service issues before hashing it (TokenTooLong)."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenTooLong()


class RecoveryService:
    def __init__(
        self,
        store: Store,
        hasher: PasswordHasher,
        mails: AccountMails,
        lifetimes: TokenLifetimes,
        clock: Clock,
        *,
        queue: MailQueue | None = None,
        throttle: RecoveryThrottle | None = None,
        wake_delay_seconds: float = WAKE_DELAY_SECONDS,
    ) -> None:
        self._wake_delay = wake_delay_seconds
        self._store = store
        self._hasher = hasher
        self._mails = mails
        self._queue = queue or NoCourier()
        self._lifetimes = lifetimes
        self._clock = clock
        self._throttle = throttle or RecoveryThrottle.off(clock)

    @reports_store_outage
    async def forgot_password(self, email: str, client: ClientInfo) -> None:
        """Mail a reset link if an enabled account has `email`; the same work and answer either way.
        Raise InvalidEmail or Throttled."""
        normalised = normalise_email(email)
        await self._throttle.begin_forgot(normalised, client)
        now = self._clock()
        token, lifetime = new_account_token(), self._lifetimes.reset
        mail = self._mails.reset(normalised, token, lifetime, now)
        stored = AccountToken(token_hash(token), now, now + lifetime)
        user_id = await self._store.create_reset_token(normalised, stored, mail)
        audit.record(audit.PASSWORD_RESET_REQUESTED, client, user_id=user_id)
        # The courier's round runs either way, as it does for a real mail; only a real one is counted.
        self._after_answer(self._queue.queued if user_id is not None else self._queue.notify)

    def _after_answer(self, wake: Callable[[], None]) -> None:
        if self._wake_delay <= 0:
            wake()
            return
        jitter = secrets.randbelow(1000) / 1000 * WAKE_JITTER_SECONDS
        asyncio.get_running_loop().call_later(self._wake_delay + jitter, wake)

    @reports_store_outage
    async def reset_password(self, token: str, new_password: str, client: ClientInfo) -> int:
        """Set a new password with a reset token and revoke every session of the account; return how many.
        Raise TokenTooLong, WeakPassword, PasswordTooLong, Throttled or ResetTokenInvalid."""
        _check_presented(token)
        encoded = check_new_password(new_password)
        if not token:
            raise ResetTokenInvalid()
        attempt = await self._throttle.begin_reset(client)
        password_hash = await self._hasher.hash(encoded)
        done = await self._store.reset_password(
            token_hash(token), password_hash, REASON_PASSWORD_RESET, self._clock()
        )
        if done is None:
            audit.record(audit.RESET_TOKEN_REFUSED, client, level=logging.WARNING)
            raise ResetTokenInvalid()
        await self._throttle.reset_succeeded(attempt)
        audit.record(audit.PASSWORD_RESET, client, user_id=done.user_id, count=done.revoked_sessions)
        return done.revoked_sessions

    @reports_store_outage
    async def request_email_verification(self, caller: Caller, client: ClientInfo) -> bool:
        """Mail the caller a verification link unless their email is verified already (or the account is
        disabled); return whether a mail was queued. Raise Throttled."""
        await self._throttle.begin_verify_request(caller.user_id, client)
        now = self._clock()
        token, lifetime = new_account_token(), self._lifetimes.verify
        # The access token's email is the account's: emails never change once registered.
        mail = self._mails.verify(caller.email, token, lifetime, now)
        stored = AccountToken(token_hash(token), now, now + lifetime)
        mailed = await self._store.create_verify_token(caller.user_id, stored, mail)
        audit.record(
            audit.EMAIL_VERIFICATION_REQUESTED,
            client,
            user_id=caller.user_id,
            session_id=caller.session_id,
            count=int(mailed),
        )
        if mailed:
            self._queue.queued()
        return mailed

    @reports_store_outage
    async def verify_email(self, token: str, client: ClientInfo) -> None:
        """Mark the email of the token's account verified. Raise TokenTooLong or VerificationTokenInvalid."""
        _check_presented(token)
        user_id = await self._store.verify_email(token_hash(token), self._clock()) if token else None
        if user_id is None:
            raise VerificationTokenInvalid()
        audit.record(audit.EMAIL_VERIFIED, client, user_id=user_id)
