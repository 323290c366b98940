"""Login throttling: how many password attempts an account, and a client address, may make per window.

Every login attempt is counted *before* any bcrypt work, atomically across replicas (the counters live in
the shared store), and a successful login gives its attempt back and clears the account's count. So the
counts are of failures, plus attempts still in flight: concurrent guesses cannot slip past the limit
together. An attempt refused while throttled is not counted, so a flood never keeps the owner locked out
for longer than one window after the first failure. The per-address limit sits well above the
per-account one: an address may be a NAT for many users, while an account has one owner.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import timedelta

from authsvc.clock import Clock
from authsvc.domain import audit
from authsvc.domain.audit import ClientInfo
from authsvc.domain.errors import Throttled
from authsvc.store.throttle import AttemptLimit, AttemptStore

LOGIN_THROTTLED = "login_throttled"  # audit event: a login refused before any password check
ACCOUNT_PREFIX = "login:account:"
ADDRESS_PREFIX = "login:address:"


@dataclass(frozen=True)
class ThrottlePolicy:
    window: timedelta
    max_failures_per_account: int
    max_failures_per_address: int


class LoginThrottle:
    """Decides whether a login attempt may spend bcrypt work. With no `attempts` store, nothing is
    throttled (for callers that build a service by hand)."""

    def __init__(self, attempts: AttemptStore | None, policy: ThrottlePolicy, clock: Clock) -> None:
        self._attempts = attempts
        self._policy = policy
        self._clock = clock

    @classmethod
    def off(cls, clock: Clock) -> LoginThrottle:
        return cls(None, ThrottlePolicy(timedelta(0), 0, 0), clock)

    async def begin_attempt(self, email: str, client: ClientInfo) -> None:
        """Count one attempt on the (normalised) account and the client address, or raise Throttled
        with the seconds until the fullest window ends. Raise StoreUnavailable when the counters are
        unreachable: failing closed keeps a store outage from lifting the limits."""
        if self._attempts is None:
            return
        address = client.ip_address
        limits = [AttemptLimit(ACCOUNT_PREFIX + email, self._policy.max_failures_per_account)]
        if address:
            limits.append(AttemptLimit(ADDRESS_PREFIX + address, self._policy.max_failures_per_address))
        now = self._clock()
        refused_until = await self._attempts.create_attempt(limits, now, self._policy.window)
        if refused_until is None:
            return
        retry_after = max(1, math.ceil((refused_until - now).total_seconds()))
        audit.record(LOGIN_THROTTLED, client, level=logging.WARNING)
        raise Throttled(retry_after)

    async def record_success(self, email: str, client: ClientInfo) -> None:
        """The attempt begun for this account succeeded: clear the account's count and give the
        address its attempt back."""
        if self._attempts is None:
            return
        await self._attempts.delete_attempts(ACCOUNT_PREFIX + email)
        if client.ip_address:
            await self._attempts.delete_attempt(ADDRESS_PREFIX + client.ip_address, self._clock())
