"""Login throttling (authsvc/domain/throttling.py) at the documented defaults: the account at one address
(5 per 5 minutes), the address across accounts (50 per 5 minutes), and the account across the addresses it
is not known at (100 per hour); each attempt counted before any bcrypt work, a refused one not counted."""

from __future__ import annotations

import asyncio

import pytest

from authsvc.domain.audit import ClientInfo
from authsvc.domain.errors import InvalidCredentials, Throttled
from tests.conftest import PASSWORD
from tests.domain.conftest import EMAIL, LOGIN_POLICY, Domain

WRONG = "wrong password"
HOME = "198.51.100.1"  # where the owner logs in
GUESSER = "203.0.113.66"
PAIR_LIMIT = LOGIN_POLICY.max_failures_per_pair
ADDRESS_LIMIT = LOGIN_POLICY.max_failures_per_address
ACCOUNT_LIMIT = LOGIN_POLICY.max_failures_per_account
WINDOW = LOGIN_POLICY.window.total_seconds()
ACCOUNT_WINDOW = LOGIN_POLICY.account_window.total_seconds()
DAY = 86_400


def at(address: str | None) -> ClientInfo:
    return ClientInfo(user_agent="pytest", ip_address=address)


def stranger(number: int) -> str:
    """A different address for each guess, none of them HOME or GUESSER (IPv6 documentation prefix)."""
    return f"2001:db8::{number + 1:x}"


async def attempt(domain: Domain, address: str | None, password: str = WRONG, email: str = EMAIL) -> str:
    """One login; its outcome as a word: OK, DENIED, or THROTTLED with the seconds to wait."""
    try:
        await domain.login(email, password, at(address))
    except InvalidCredentials:
        return "DENIED"
    except Throttled as throttled:
        return f"THROTTLED {throttled.retry_after_seconds}"
    return "OK"


async def attempts(domain: Domain, address: str | None, count: int, password: str = WRONG) -> list[str]:
    return [await attempt(domain, address, password) for _ in range(count)]


@pytest.fixture
async def account(domain: Domain) -> Domain:
    await domain.register()
    return domain


async def test_the_sixth_guess_from_one_address_is_throttled_until_the_window_ends(account: Domain):
    assert await attempts(account, GUESSER, PAIR_LIMIT + 1) == ["DENIED"] * PAIR_LIMIT + ["THROTTLED 300"]
    assert await attempt(account, GUESSER, PASSWORD) == "THROTTLED 300"  # the right password too


async def test_a_throttled_attempt_costs_no_bcrypt_work(account: Domain):
    await attempts(account, GUESSER, PAIR_LIMIT)
    assert account.hasher.checks == PAIR_LIMIT
    await attempts(account, GUESSER, 20, PASSWORD)
    assert account.hasher.checks == PAIR_LIMIT


async def test_refused_attempts_do_not_extend_the_window(account: Domain):
    await attempts(account, GUESSER, PAIR_LIMIT)
    for waited in (100, 100, 99):
        account.clock.advance(waited)
        await attempt(account, GUESSER)
    assert await attempt(account, GUESSER) == "THROTTLED 1"
    account.clock.advance(1)
    assert await attempt(account, GUESSER, PASSWORD) == "OK"


async def test_a_successful_login_clears_the_count_at_its_address(account: Domain):
    await attempts(account, HOME, PAIR_LIMIT - 1)
    assert await attempt(account, HOME, PASSWORD) == "OK"
    assert await attempts(account, HOME, PAIR_LIMIT + 1) == ["DENIED"] * PAIR_LIMIT + ["THROTTLED 300"]


async def test_guesses_from_one_address_lock_only_that_address_out_of_the_account(account: Domain):
    await attempts(account, GUESSER, PAIR_LIMIT + 1)
    assert await attempt(account, HOME, PASSWORD) == "OK"


async def test_one_address_guessing_is_still_throttled_where_the_owner_logged_in(account: Domain):
    assert await attempt(account, HOME, PASSWORD) == "OK"
    assert await attempts(account, HOME, PAIR_LIMIT + 1) == ["DENIED"] * PAIR_LIMIT + ["THROTTLED 300"]


async def test_one_address_is_throttled_across_accounts_and_other_addresses_are_not(domain: Domain):
    outcomes = [
        await attempt(domain, GUESSER, email=f"user{n}@example.com") for n in range(ADDRESS_LIMIT + 1)
    ]
    assert outcomes == ["DENIED"] * ADDRESS_LIMIT + ["THROTTLED 300"]
    assert await attempt(domain, HOME, email="user0@example.com") == "DENIED"


async def test_guesses_spread_over_many_addresses_stop_at_the_account_wide_limit(account: Domain):
    outcomes = [await attempt(account, stranger(n)) for n in range(ACCOUNT_LIMIT + 1)]
    assert outcomes == ["DENIED"] * ACCOUNT_LIMIT + ["THROTTLED 3600"]
    # An address the owner never logged in at is held like any other...
    assert await attempt(account, stranger(ACCOUNT_LIMIT + 1), PASSWORD) == "THROTTLED 3600"


async def test_past_the_account_wide_limit_the_owner_still_logs_in_where_they_did_before(account: Domain):
    assert await attempt(account, HOME, PASSWORD) == "OK"
    for n in range(ACCOUNT_LIMIT + 1):
        await attempt(account, stranger(n))
    assert await attempt(account, HOME, PASSWORD) == "OK"
    assert account.hasher.checks == ACCOUNT_LIMIT + 2


async def test_the_owners_own_failures_at_a_known_address_do_not_count_account_wide(account: Domain):
    assert await attempt(account, HOME, PASSWORD) == "OK"
    for n in range(ACCOUNT_LIMIT - 1):
        await attempt(account, stranger(n))
    await attempts(account, HOME, PAIR_LIMIT - 1)  # typos at home, which would overflow the account's count
    assert await attempt(account, stranger(ACCOUNT_LIMIT - 1)) == "DENIED"
    assert await attempt(account, stranger(ACCOUNT_LIMIT)) == "THROTTLED 3600"


async def test_unknown_accounts_are_throttled_alike(domain: Domain):
    assert await attempts(domain, GUESSER, PAIR_LIMIT + 1) == ["DENIED"] * PAIR_LIMIT + ["THROTTLED 300"]
    outcomes = [
        await attempt(domain, stranger(n), email="nobody@example.com") for n in range(ACCOUNT_LIMIT + 1)
    ]
    assert outcomes[-1] == "THROTTLED 3600"


async def test_a_known_address_stays_known_for_its_lifetime_renewed_by_each_login(account: Domain):
    lifetime = LOGIN_POLICY.known_address_lifetime.total_seconds()
    assert await attempt(account, HOME, PASSWORD) == "OK"
    account.clock.advance(lifetime - DAY)
    assert await attempt(account, HOME, PASSWORD) == "OK"  # renews it
    account.clock.advance(2 * DAY)
    for n in range(ACCOUNT_LIMIT):
        await attempt(account, stranger(n))
    assert await attempt(account, HOME, PASSWORD) == "OK"
    account.clock.advance(lifetime + 1)  # forgotten; the guessers' window has ended too, so refill it
    for n in range(ACCOUNT_LIMIT):
        await attempt(account, stranger(n))
    assert await attempt(account, HOME, PASSWORD) == "THROTTLED 3600"


async def test_the_account_wide_count_belongs_to_the_guessers_and_survives_a_success(account: Domain):
    assert await attempt(account, HOME, PASSWORD) == "OK"
    for n in range(ACCOUNT_LIMIT):
        await attempt(account, stranger(n))
    assert await attempt(account, HOME, PASSWORD) == "OK"
    assert await attempt(account, stranger(ACCOUNT_LIMIT)) == "THROTTLED 3600"
    account.clock.advance(ACCOUNT_WINDOW)
    assert await attempt(account, stranger(ACCOUNT_LIMIT)) == "DENIED"


async def test_concurrent_guesses_cannot_slip_past_the_limit_together(account: Domain):
    outcomes = await asyncio.gather(*(attempt(account, GUESSER) for _ in range(30)))
    assert sorted(outcomes) == ["DENIED"] * PAIR_LIMIT + ["THROTTLED 300"] * (30 - PAIR_LIMIT)
    assert account.hasher.checks == PAIR_LIMIT


async def test_callers_without_an_address_share_one_count_per_account(account: Domain):
    """A Unix socket peer has no address: such callers are counted together, as one address."""
    assert await attempts(account, None, PAIR_LIMIT + 1) == ["DENIED"] * PAIR_LIMIT + ["THROTTLED 300"]
    assert await attempt(account, HOME, PASSWORD) == "OK"
