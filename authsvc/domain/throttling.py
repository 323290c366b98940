"""Throttling of logins and registrations, counted before any bcrypt work in the shared attempt store.

Every attempt is counted *before* its bcrypt work, atomically across replicas (the counters live in the
shared store); an attempt refused while throttled costs no bcrypt work and is not counted, so a flood
never extends a window. Limits are per fixed window (throttle.py).

Login: three counters, so that strangers cannot turn the limits against an account's owner.
- The account *at one address*: `max_failures_per_pair` (5 per 300 s). One address guessing one account
  is stopped quickly, and only that address is: the owner elsewhere is not.
- The address across accounts: `max_failures_per_address` (50 per 300 s).
- The account across the addresses it is not known at: `max_failures_per_account` over the longer
  `account_window` (100 per hour). This bounds a guesser spread over many addresses to that many guesses
  per window in all, instead of shutting the account.
An address is *known* for an account once a login there succeeded, for `known_address_lifetime` (30
days, renewed by each success): the account-wide counter neither counts nor refuses it, so a guesser
spread over any number of other addresses never locks the owner out where they log in. A success gives
its attempt back on every counter it took, and clears its own (account, address) count; it does not
clear the account-wide count, which belongs to the guessers.
Unknown emails are throttled exactly like real ones, so throttling does not reveal which exist.

Register: per address (`max_per_address`, 10 per hour) and in all (`max_per_window`, 1000 per hour);
every registration counts, new email or taken, so the limit bounds existence checks and hashing alike.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from authsvc.clock import Clock
from authsvc.domain import audit
from authsvc.domain.audit import ClientInfo
from authsvc.domain.errors import Throttled
from authsvc.store.throttle import AttemptLimit, AttemptStore

LOGIN_THROTTLED = "login_throttled"  # audit event: a login refused before any password check
REGISTER_THROTTLED = "register_throttled"  # audit event: a registration refused before any hashing
PAIR_PREFIX = "login:pair:"  # + address|email: one account at one address
ADDRESS_PREFIX = "login:address:"
ACCOUNT_PREFIX = "login:account:"  # the account, from the addresses it is not known at
KNOWN_PREFIX = "login:known:"  # + address|email: a mark, the address logged into the account
REGISTER_ADDRESS_PREFIX = "register:address:"
REGISTER_ALL = "register:all"
NO_ADDRESS = "-"  # the key of callers with no IP address (a Unix socket peer)


@dataclass(frozen=True)
class LoginPolicy:
    window: timedelta
    max_failures_per_pair: int
    max_failures_per_address: int
    account_window: timedelta
    max_failures_per_account: int
    known_address_lifetime: timedelta


@dataclass(frozen=True)
class RegisterPolicy:
    window: timedelta
    max_per_address: int
    max_per_window: int


@dataclass(frozen=True)
class LoginAttempt:
    """What `LoginThrottle.begin_attempt` counted, for `record_success` to give back."""

    pair: str
    known: str | None  # the mark to renew on success; None without an address
    counted: tuple[str, ...]


def _pair(address: str | None, email: str) -> str:
    # Addresses never hold "|", so the address first keeps every (address, email) key distinct.
    return f"{address or NO_ADDRESS}|{email}"


def throttled(refused_until: datetime, now: datetime) -> Throttled:
    """The error for an attempt refused until `refused_until`: retry after the whole seconds left (>= 1)."""
    return Throttled(max(1, math.ceil((refused_until - now).total_seconds())))


async def _take(
    attempts: AttemptStore, limits: list[AttemptLimit], now: datetime, event: str, client: ClientInfo
) -> None:
    refused_until = await attempts.create_attempt(limits, now)
    if refused_until is None:
        return
    audit.record(event, client, level=logging.WARNING)
    raise throttled(refused_until, now)


class LoginThrottle:
    """Decides whether a login attempt may spend bcrypt work. With no `attempts` store, nothing is
    throttled (for callers that build a service by hand)."""

    def __init__(self, attempts: AttemptStore | None, policy: LoginPolicy, clock: Clock) -> None:
        self._attempts = attempts
        self._policy = policy
        self._clock = clock

    @classmethod
    def off(cls, clock: Clock) -> LoginThrottle:
        return cls(None, LoginPolicy(timedelta(0), 0, 0, timedelta(0), 0, timedelta(0)), clock)

    async def begin_attempt(self, email: str, client: ClientInfo) -> LoginAttempt:
        """Count one attempt for the (normalised) account at the client's address, for the address, and,
        unless the address is known for the account, for the account; or raise Throttled with the
        seconds until the fullest window ends. Raise StoreUnavailable when the counters are unreachable:
        failing closed keeps a store outage from lifting the limits."""
        address = client.ip_address
        pair = _pair(address, email)
        known = KNOWN_PREFIX + pair if address else None
        if self._attempts is None:
            return LoginAttempt(pair, known, ())
        policy = self._policy
        now = self._clock()
        limits = [AttemptLimit(PAIR_PREFIX + pair, policy.max_failures_per_pair, policy.window)]
        if address:
            limits.append(
                AttemptLimit(ADDRESS_PREFIX + address, policy.max_failures_per_address, policy.window)
            )
        if known is None or not await self._attempts.has_mark(known, now):
            limits.append(
                AttemptLimit(ACCOUNT_PREFIX + email, policy.max_failures_per_account, policy.account_window)
            )
        await _take(self._attempts, limits, now, LOGIN_THROTTLED, client)
        return LoginAttempt(pair, known, tuple(limit.key for limit in limits))

    async def record_success(self, attempt: LoginAttempt, *, remember_address: bool = True) -> None:
        """The attempt succeeded: clear its (account, address) count, give back its attempt on the other
        counters, and know its address for the account from now on. With `remember_address` False (the
        account was just deleted) forget the address instead: a mark's key holds the email."""
        if self._attempts is None:
            return
        now = self._clock()
        pair_key = PAIR_PREFIX + attempt.pair
        await self._attempts.delete_attempts(pair_key)
        await self._attempts.delete_attempt([key for key in attempt.counted if key != pair_key], now)
        if attempt.known is None:
            return
        if remember_address:
            await self._attempts.create_mark(attempt.known, now, self._policy.known_address_lifetime)
        else:
            await self._attempts.delete_attempts(attempt.known)


class RegisterThrottle:
    """Decides whether a registration may spend bcrypt work; with no `attempts` store, never refuses."""

    def __init__(self, attempts: AttemptStore | None, policy: RegisterPolicy, clock: Clock) -> None:
        self._attempts = attempts
        self._policy = policy
        self._clock = clock

    @classmethod
    def off(cls, clock: Clock) -> RegisterThrottle:
        return cls(None, RegisterPolicy(timedelta(0), 0, 0), clock)

    async def begin_attempt(self, client: ClientInfo) -> None:
        """Count one registration for the client's address and for all, or raise Throttled with the
        seconds until the fullest window ends (StoreUnavailable when the counters are unreachable)."""
        if self._attempts is None:
            return
        policy = self._policy
        limits = [AttemptLimit(REGISTER_ALL, policy.max_per_window, policy.window)]
        if client.ip_address:
            limits.append(
                AttemptLimit(
                    REGISTER_ADDRESS_PREFIX + client.ip_address, policy.max_per_address, policy.window
                )
            )
        await _take(self._attempts, limits, self._clock(), REGISTER_THROTTLED, client)


# -- password reset and email verification (authsvc/domain/recovery.py) -----------------------------------
# ForgotPassword: every request counts, for its email and for its address, whether or not an account has
# the email (so the limits tell nothing about which exist); the per-email limit also bounds how much mail
# a stranger can send someone. ResetPassword: every attempt counts for its address before its bcrypt work,
# and a success gives its attempt back, so the limit is on wrong tokens. A verification request counts for
# its user.
FORGOT_THROTTLED = "forgot_password_throttled"
RESET_THROTTLED = "reset_password_throttled"
VERIFY_REQUEST_THROTTLED = "verify_request_throttled"
FORGOT_EMAIL_PREFIX = "forgot:email:"
FORGOT_ADDRESS_PREFIX = "forgot:address:"
RESET_ADDRESS_PREFIX = "reset:address:"
VERIFY_USER_PREFIX = "verify:user:"


@dataclass(frozen=True)
class RecoveryPolicy:
    forgot_window: timedelta
    forgot_max_per_email: int
    forgot_max_per_address: int
    reset_window: timedelta
    reset_max_failures_per_address: int
    verify_window: timedelta
    verify_max_per_user: int


class RecoveryThrottle:
    """Decides whether a reset request, a reset or a verification request may go ahead; with no
    `attempts` store, never refuses. Each method raises Throttled with the seconds until the fullest
    window ends, or StoreUnavailable when the counters are unreachable (never unthrottled)."""

    def __init__(self, attempts: AttemptStore | None, policy: RecoveryPolicy, clock: Clock) -> None:
        self._attempts = attempts
        self._policy = policy
        self._clock = clock

    @classmethod
    def off(cls, clock: Clock) -> RecoveryThrottle:
        return cls(None, RecoveryPolicy(timedelta(0), 0, 0, timedelta(0), 0, timedelta(0), 0), clock)

    async def begin_forgot(self, email: str, client: ClientInfo) -> None:
        """Count one reset request for the (normalised) email and for the client's address."""
        if self._attempts is None:
            return
        policy = self._policy
        limits = [
            AttemptLimit(FORGOT_EMAIL_PREFIX + email, policy.forgot_max_per_email, policy.forgot_window)
        ]
        if client.ip_address:
            limits.append(
                AttemptLimit(
                    FORGOT_ADDRESS_PREFIX + client.ip_address,
                    policy.forgot_max_per_address,
                    policy.forgot_window,
                )
            )
        await _take(self._attempts, limits, self._clock(), FORGOT_THROTTLED, client)

    async def begin_reset(self, client: ClientInfo) -> str | None:
        """Count one reset attempt for the client's address; return the key to give back on success."""
        if self._attempts is None:
            return None
        policy = self._policy
        key = RESET_ADDRESS_PREFIX + (client.ip_address or NO_ADDRESS)
        limits = [AttemptLimit(key, policy.reset_max_failures_per_address, policy.reset_window)]
        await _take(self._attempts, limits, self._clock(), RESET_THROTTLED, client)
        return key

    async def reset_succeeded(self, key: str | None) -> None:
        """The token was good: give the attempt back, so only wrong tokens add up."""
        if self._attempts is not None and key is not None:
            await self._attempts.delete_attempt([key], self._clock())

    async def begin_verify_request(self, user_id: str, client: ClientInfo) -> None:
        """Count one verification request for the user."""
        if self._attempts is None:
            return
        policy = self._policy
        limits = [
            AttemptLimit(VERIFY_USER_PREFIX + user_id, policy.verify_max_per_user, policy.verify_window)
        ]
        await _take(self._attempts, limits, self._clock(), VERIFY_REQUEST_THROTTLED, client)
