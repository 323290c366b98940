"""`AttemptStore` in memory: the same fixed windows and marks as the SQL and Redis stores, for fast tests.

Checked by the same suite as theirs (tests/store/test_attempt_store.py). Like memory.py, each call yields
to the event loop once and then decides with no await in between, so concurrent attempts on one loop
cannot slip past a limit together. One process only: replicas could not share it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from authsvc.store.interface import StoreUnavailable
from authsvc.store.memory import as_utc
from authsvc.store.throttle import AttemptLimit


@dataclass
class _Window:
    """A counter's attempts and the end of its window; a mark is one with no attempts."""

    attempts: int
    ends: datetime


class MemoryAttemptStore:
    """See throttle.py's `AttemptStore` for the contract."""

    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}
        self._closed = False

    async def _enter(self) -> None:
        await asyncio.sleep(0)
        if self._closed:
            raise StoreUnavailable("the attempt counters are closed")

    async def create_attempt(self, limits: Sequence[AttemptLimit], now: datetime) -> datetime | None:
        await self._enter()
        now = as_utc(now)
        current: list[tuple[AttemptLimit, _Window]] = []
        refused_until: datetime | None = None
        for limit in limits:
            window = self._windows.get(limit.key)
            if window is None or window.ends <= now:
                window = _Window(0, now + limit.window)
            current.append((limit, window))
            if window.attempts >= limit.limit and (refused_until is None or window.ends > refused_until):
                refused_until = window.ends
        if refused_until is not None:
            return refused_until  # nothing written: a refused attempt starts or extends no window
        for limit, window in current:
            self._windows[limit.key] = _Window(window.attempts + 1, window.ends)
        return None

    async def delete_attempt(self, keys: Sequence[str], now: datetime) -> None:
        await self._enter()
        now = as_utc(now)
        for key in keys:
            window = self._windows.get(key)
            if window is not None and window.ends > now and window.attempts > 0:
                window.attempts -= 1

    async def delete_attempts(self, key: str) -> None:
        await self._enter()
        self._windows.pop(key, None)

    async def create_mark(self, key: str, now: datetime, lifetime: timedelta) -> None:
        await self._enter()
        self._windows[key] = _Window(0, as_utc(now) + lifetime)

    async def has_mark(self, key: str, now: datetime) -> bool:
        await self._enter()
        window = self._windows.get(key)
        return window is not None and window.ends > as_utc(now)

    async def ping(self) -> None:
        await self._enter()

    async def close(self) -> None:
        self._closed = True
