"""Token keepers for apps acting as a user: hold the pair, refresh it before the access token expires.

One refresh is in flight at a time, however many callers ask at once: the first caller that finds the
access token due refreshes under a lock; the others wait on the lock and then find the new token. This
matters because refresh tokens rotate: two refreshes with one token would rely on the service's grace
window, and a third would be reuse that revokes the session.

Expiry is tracked from the `expires_in` of each answer and the keeper's own clock, never from the
token's `exp` claim, so a skewed local clock does not matter.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Generic, TypedDict, TypeVar, Unpack

from authsvc_client.aio import AsyncAuthClient
from authsvc_client.client import AuthClient
from authsvc_client.errors import InvalidToken
from authsvc_client.models import TokenPair

DEFAULT_MARGIN = 60.0


class KeeperSettings(TypedDict, total=False):
    """The keywords both keepers and their `login` take."""

    margin: float  # refresh this many seconds before expiry (default 60), never before half the lifetime
    clock: Callable[[], float]  # monotonic seconds (default time.monotonic)


ClientT = TypeVar("ClientT")
LockT = TypeVar("LockT")


class SessionEnded(Exception):
    """The session is over (revoked, reused, expired or logged out): log in again. `reason` says why."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(f"the session has ended ({reason or 'logged out'}); log in again")
        self.reason = reason


class _KeeperState:
    """The pair, when it is due, and what ending the session forgets: every decision of both keepers.
    Holds no lock and makes no call."""

    def __init__(self, pair: TokenPair, margin: float, clock: Callable[[], float]) -> None:
        if margin < 0:
            raise ValueError("margin must be 0 or more")
        self.margin = margin
        self.clock = clock
        self.pair: TokenPair | None = None
        self.ended_reason: str | None = None
        self.due_at = 0.0
        self.store(pair)

    def store(self, pair: TokenPair) -> str:
        """Keep a new pair; return its access token."""
        self.pair = pair
        # Refresh `margin` seconds early, but never before half the lifetime (short-lived tokens).
        self.due_at = self.clock() + max(pair.expires_in - self.margin, pair.expires_in / 2)
        return pair.access_token

    def fresh_token(self) -> str | None:
        """The access token if it is not yet due; raise SessionEnded once the session is gone."""
        pair = self._held()
        return pair.access_token if self.clock() < self.due_at else None

    def refresh_token(self) -> str:
        """The refresh token to spend; raise SessionEnded once the session is gone."""
        return self._held().refresh_token

    def _held(self) -> TokenPair:
        if self.pair is None:
            raise SessionEnded(self.ended_reason)
        return self.pair

    def _end(self, reason: str | None) -> SessionEnded:
        self.pair = None
        self.ended_reason = reason
        return SessionEnded(reason)

    @contextlib.contextmanager
    def refreshing(self) -> Iterator[None]:
        """Around a Refresh call: a refused refresh token (revoked, reused, expired) ends the session and
        raises SessionEnded; any other failure propagates and keeps the pair for a later try."""
        try:
            yield
        except InvalidToken as exc:
            raise self._end(exc.reason) from exc

    @contextlib.contextmanager
    def logging_out(self) -> Iterator[None]:
        """Around a Logout call: forget the pair once it succeeds, or once the service says the session
        is already over (the outcome wanted); any other failure propagates and keeps the pair."""
        with contextlib.suppress(InvalidToken):
            yield
        self._end(None)


class _Keeper(ABC, Generic[ClientT, LockT]):
    """What both keepers share: the client, the state, and a lock of their kind."""

    def __init__(
        self,
        client: ClientT,
        pair: TokenPair,
        *,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._state = _KeeperState(pair, margin, clock)
        self._lock = self._new_lock()

    @abstractmethod
    def _new_lock(self) -> LockT: ...

    @property
    def pair(self) -> TokenPair | None:
        """The current pair; None once the session has ended."""
        return self._state.pair


class AsyncTokenKeeper(_Keeper[AsyncAuthClient, asyncio.Lock]):
    """Keeps one user's session alive for asyncio code. Not shared across event loops."""

    def _new_lock(self) -> asyncio.Lock:
        return asyncio.Lock()

    @classmethod
    async def login(
        cls, client: AsyncAuthClient, email: str, password: str, **settings: Unpack[KeeperSettings]
    ) -> AsyncTokenKeeper:
        """Log in and keep the new session. Raises what `AsyncAuthClient.login` raises."""
        return cls(client, await client.login(email, password), **settings)

    async def access_token(self) -> str:
        """A usable access token, refreshed first if it is due (one refresh for all concurrent callers).

        Raises SessionEnded (and forgets the pair) when the service refuses the refresh token; other
        failures (Unavailable, DeadlineExceeded...) propagate and keep the pair for a later try.
        """
        token = self._state.fresh_token()
        if token is not None:
            return token
        async with self._lock:
            # Another caller may have refreshed while this one waited for the lock.
            token = self._state.fresh_token()
            return await self._refresh_locked() if token is None else token

    async def refresh(self) -> str:
        """Refresh now, whatever the expiry; return the new access token."""
        async with self._lock:
            return await self._refresh_locked()

    async def _refresh_locked(self) -> str:
        with self._state.refreshing():
            pair = await self._client.refresh(self._state.refresh_token())
        return self._state.store(pair)

    async def logout(self) -> None:
        """End the session at the service and forget the pair; a no-op once ended.

        If the service cannot be reached the error propagates and the pair is kept, to try again."""
        async with self._lock:
            pair = self._state.pair
            if pair is not None:
                with self._state.logging_out():
                    await self._client.logout(pair.refresh_token)


class TokenKeeper(_Keeper[AuthClient, threading.Lock]):
    """Keeps one user's session alive for threaded code; safe to share between threads."""

    def _new_lock(self) -> threading.Lock:
        return threading.Lock()

    @classmethod
    def login(
        cls, client: AuthClient, email: str, password: str, **settings: Unpack[KeeperSettings]
    ) -> TokenKeeper:
        """Log in and keep the new session. Raises what `AuthClient.login` raises."""
        return cls(client, client.login(email, password), **settings)

    def access_token(self) -> str:
        """As `AsyncTokenKeeper.access_token`, for threads."""
        token = self._state.fresh_token()
        if token is not None:
            return token
        with self._lock:
            token = self._state.fresh_token()
            return self._refresh_locked() if token is None else token

    def refresh(self) -> str:
        """Refresh now, whatever the expiry; return the new access token."""
        with self._lock:
            return self._refresh_locked()

    def _refresh_locked(self) -> str:
        with self._state.refreshing():
            pair = self._client.refresh(self._state.refresh_token())
        return self._state.store(pair)

    def logout(self) -> None:
        """As `AsyncTokenKeeper.logout`, for threads."""
        with self._lock:
            pair = self._state.pair
            if pair is not None:
                with self._state.logging_out():
                    self._client.logout(pair.refresh_token)
