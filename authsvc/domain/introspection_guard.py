"""Who may call Introspect: the introspection secret, loopback only without one, and throttled guesses.

- With no secret configured (AUTHSVC_INTROSPECTION_SECRET unset), Introspect answers only local
  callers: a loopback address (127.0.0.0/8, ::1) or a Unix socket peer (no address). Anyone else gets
  PERMISSION_DENIED `INTROSPECTION_LOOPBACK_ONLY`. The address is the one the transport settled on (the
  peer, or what a trusted proxy forwarded), so an outside client behind the REST sidecar is not local.
- With a secret, callers anywhere present it (`authorization: Bearer <secret>`); a missing or wrong one is
  UNAUTHENTICATED `NOT_AUTHENTICATED`. Failed checks are counted per client address in the shared
  attempt store (every replica sees them): once an address has had `max_failures_per_address` of them
  within `window` (from its first), every Introspect call from it, the right secret included, is
  RESOURCE_EXHAUSTED `THROTTLED` until the window ends. So an address has at most that many secrets
  checked per window (plus calls already past the block check when the block began). A caller with the
  right secret costs one read of the store (the block mark), never a write.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from authsvc.clock import Clock
from authsvc.domain import audit
from authsvc.domain.audit import ClientInfo
from authsvc.domain.errors import IntrospectionLoopbackOnly, NotAuthenticated
from authsvc.domain.throttling import NO_ADDRESS, throttled
from authsvc.store.throttle import AttemptLimit, AttemptStore

INTROSPECT_DENIED = "introspect_denied"  # audit event: a missing or wrong introspection secret
INTROSPECT_BLOCKED = "introspect_blocked"  # audit event: an address reached the limit of failures
INTROSPECT_THROTTLED = "introspect_throttled"  # audit event: refused while the address is blocked
INTROSPECT_NOT_LOCAL = "introspect_not_local"  # audit event: no secret configured, caller not on loopback
FAILURES_PREFIX = "introspect:address:"  # + address: failed secret checks in the current window
BLOCKED_PREFIX = "introspect:blocked:"  # + address: a mark, refused until the failures' window ends
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class IntrospectionPolicy:
    window: timedelta
    max_failures_per_address: int


def is_local(address: str | None) -> bool:
    """Whether a (normalised) client address is on this host: loopback, or None (a Unix socket peer)."""
    if address is None:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class IntrospectionGuard:
    """Admits or refuses one Introspect caller. With no `attempts` store, wrong secrets are not throttled
    (for callers that build a service by hand)."""

    def __init__(
        self,
        secret: str | None,
        attempts: AttemptStore | None,
        policy: IntrospectionPolicy,
        clock: Clock,
    ) -> None:
        self._secret = secret.encode("utf-8", "surrogateescape") if secret else None
        self._attempts = attempts
        self._policy = policy
        self._clock = clock

    @classmethod
    def unthrottled(cls, secret: str | None, clock: Clock) -> IntrospectionGuard:
        return cls(secret, None, IntrospectionPolicy(timedelta(0), 0), clock)

    @property
    def has_secret(self) -> bool:
        return self._secret is not None

    async def admit(self, presented: str | None, client: ClientInfo) -> None:
        """Return when the caller may introspect; else raise IntrospectionLoopbackOnly, NotAuthenticated
        or Throttled (StoreUnavailable when the counters are unreachable: never unthrottled)."""
        expected = self._secret
        if expected is None:
            if not is_local(client.ip_address):
                audit.record(INTROSPECT_NOT_LOCAL, client, level=logging.WARNING)
                raise IntrospectionLoopbackOnly()
            return
        address = client.ip_address or NO_ADDRESS
        counted = await self._refuse_blocked(address, client)
        if presented is not None and hmac.compare_digest(presented.encode("utf-8"), expected):
            if counted and self._attempts is not None:
                await self._attempts.delete_attempt([self._limit(address).key], self._clock())
            return
        audit.record(INTROSPECT_DENIED, client, level=logging.WARNING)
        if not counted:
            await self._count_failure(address, client)
        if presented is None:
            raise NotAuthenticated("Introspection requires `authorization: Bearer <introspection secret>`")
        raise NotAuthenticated("Introspection secret is not valid")

    def _limit(self, address: str) -> AttemptLimit:
        # One less than the limit is taken: the failure that reaches the limit is the one refused by the
        # counter, which tells that it is the last and starts the block (the counter alone cannot say).
        policy = self._policy
        return AttemptLimit(FAILURES_PREFIX + address, policy.max_failures_per_address - 1, policy.window)

    async def _count_failure(self, address: str, client: ClientInfo) -> None:
        if self._attempts is None:
            return
        now = self._clock()
        refused_until = await self._attempts.create_attempt([self._limit(address)], now)
        if refused_until is None:
            return
        await self._attempts.create_mark(BLOCKED_PREFIX + address, now, refused_until - now)
        audit.record(INTROSPECT_BLOCKED, client, level=logging.WARNING)

    async def _refuse_blocked(self, address: str, client: ClientInfo) -> bool:
        """Raise Throttled when the address is blocked, with the time left in its window, read back from
        its full counter (which refuses without counting). Return True when that window had ended after
        all (the mark and the counter end together): then a new one began, counting this call."""
        if self._attempts is None or not await self._attempts.has_mark(
            BLOCKED_PREFIX + address, self._clock()
        ):
            return False
        now = self._clock()
        refused_until = await self._attempts.create_attempt([self._limit(address)], now)
        if refused_until is None:
            return True
        self._throttled(refused_until, now, client)

    @staticmethod
    def _throttled(refused_until: datetime, now: datetime, client: ClientInfo) -> NoReturn:
        audit.record(INTROSPECT_THROTTLED, client, level=logging.WARNING)
        raise throttled(refused_until, now)
