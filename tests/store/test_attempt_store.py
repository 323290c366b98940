"""The attempt counters and marks (authsvc/store/throttle.py), once for every backend: SQLite,
PostgreSQL, Redis and memory (the `counters` fixture, tests/store/conftest.py). Each test gets fresh
counters: its own database, its own Redis key prefix, or a new memory store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from authsvc.store.throttle import AttemptLimit, AttemptStore

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)


def limits(account: int = 3, address: int = 10) -> list[AttemptLimit]:
    return [
        AttemptLimit("account:ada", account, WINDOW),
        AttemptLimit("address:203.0.113.9", address, WINDOW),
    ]


async def take(counters: AttemptStore, times: int, now: datetime = T0, **limit: int) -> list[datetime | None]:
    return [await counters.create_attempt(limits(**limit), now) for _ in range(times)]


async def test_attempts_under_the_limit_are_taken_and_the_next_is_refused_until_the_window_ends(counters):
    assert await take(counters, 3) == [None, None, None]
    assert await take(counters, 1, T0 + timedelta(minutes=1)) == [T0 + WINDOW]


async def test_a_refused_attempt_counts_nothing_and_the_window_does_not_move(counters):
    await take(counters, 3)
    for minute in range(1, 5):
        assert await take(counters, 1, T0 + timedelta(minutes=minute)) == [T0 + WINDOW]
    assert await take(counters, 1, T0 + WINDOW) == [None]


async def test_a_new_window_starts_counting_from_zero(counters):
    await take(counters, 3)
    later = T0 + WINDOW + timedelta(seconds=1)
    assert await take(counters, 4, later) == [None, None, None, later + WINDOW]


async def test_one_full_key_refuses_the_attempt_on_every_key(counters):
    assert await take(counters, 2, address=2) == [None, None]
    assert await take(counters, 1, address=2) == [T0 + WINDOW]
    # The account was not counted by the refused attempt: with a roomier address limit, one is left.
    assert await take(counters, 2, address=100) == [None, T0 + WINDOW]


async def test_giving_back_and_forgetting_attempts(counters):
    await take(counters, 3)
    await counters.delete_attempt(["account:ada"], T0)
    assert await take(counters, 2) == [None, T0 + WINDOW]
    await counters.delete_attempts("account:ada")
    assert await take(counters, 3) == [None, None, None]


async def test_giving_back_on_several_keys_at_once(counters):
    await take(counters, 2, address=2)
    await counters.delete_attempt(["account:ada", "address:203.0.113.9"], T0)
    assert await take(counters, 2, address=2) == [None, T0 + WINDOW]


async def test_giving_back_never_goes_below_zero(counters):
    for _ in range(3):
        await counters.delete_attempt(["account:ada"], T0)
    await counters.delete_attempt([], T0)
    assert await take(counters, 4) == [None, None, None, T0 + WINDOW]


async def test_concurrent_attempts_take_exactly_the_limit(counters):
    answers = await asyncio.gather(*(counters.create_attempt(limits(5), T0) for _ in range(40)))
    assert answers.count(None) == 5


async def test_each_key_keeps_its_own_window(counters):
    hour = timedelta(hours=1)
    both = [AttemptLimit("pair:ada", 2, WINDOW), AttemptLimit("account:ada", 3, hour)]
    assert [await counters.create_attempt(both, T0) for _ in range(3)] == [None, None, T0 + WINDOW]
    # The short window ended and starts again; the long one still holds its two attempts.
    assert await counters.create_attempt(both, T0 + WINDOW) is None
    assert await counters.create_attempt(both, T0 + WINDOW) == T0 + hour
    assert await counters.create_attempt(both, T0 + hour) is None


async def test_a_mark_is_remembered_until_its_lifetime_ends(counters):
    day = timedelta(days=1)
    assert not await counters.has_mark("known:ada", T0)
    await counters.create_mark("known:ada", T0, day)
    assert await counters.has_mark("known:ada", T0 + day - timedelta(seconds=1))
    assert not await counters.has_mark("known:ada", T0 + day)
    assert not await counters.has_mark("known:bob", T0)


async def test_renewing_a_mark_moves_its_end(counters):
    day = timedelta(days=1)
    await counters.create_mark("known:ada", T0, day)
    await counters.create_mark("known:ada", T0 + day / 2, day)
    assert await counters.has_mark("known:ada", T0 + day)
    assert not await counters.has_mark("known:ada", T0 + day * 3 / 2)
