"""Registration throttling at the documented defaults: 10 per address per hour and 1,000 in all, every valid
request counted (a new email or a taken one) before its bcrypt work, an invalid one not counted."""

from __future__ import annotations

from dataclasses import replace

import pytest

from authsvc.domain.audit import ClientInfo
from authsvc.domain.errors import EmailTaken, InvalidRequest, Throttled
from tests.conftest import PASSWORD
from tests.domain.conftest import REGISTER_POLICY, Domain, MakeDomain

PER_ADDRESS = REGISTER_POLICY.max_per_address
GUESSER = ClientInfo(ip_address="203.0.113.66")


async def register(domain: Domain, email: str, client: ClientInfo = GUESSER, password: str = PASSWORD) -> str:
    """One registration; its outcome as a word: OK, TAKEN, INVALID, or THROTTLED with the seconds to wait."""
    try:
        await domain.register(email, password, client)
    except EmailTaken:
        return "TAKEN"
    except InvalidRequest:
        return "INVALID"
    except Throttled as throttled:
        return f"THROTTLED {throttled.retry_after_seconds}"
    return "OK"


async def test_the_eleventh_registration_from_one_address_is_throttled_and_others_still_register(
    domain: Domain,
):
    outcomes = [await register(domain, f"user{n}@example.com") for n in range(PER_ADDRESS + 1)]
    assert outcomes == ["OK"] * PER_ADDRESS + ["THROTTLED 3600"]
    assert await register(domain, "ada@example.com", ClientInfo(ip_address="198.51.100.1")) == "OK"
    domain.clock.advance(REGISTER_POLICY.window.total_seconds())
    assert await register(domain, "bob@example.com") == "OK"


async def test_registrations_from_all_addresses_stop_at_the_global_ceiling(make_domain: MakeDomain):
    domain = make_domain(register_policy=replace(REGISTER_POLICY, max_per_window=3))
    outcomes = [
        await register(domain, f"user{n}@example.com", ClientInfo(ip_address=f"198.51.100.{n}"))
        for n in range(4)
    ]
    assert outcomes == ["OK"] * 3 + ["THROTTLED 3600"]


async def test_a_throttled_registration_costs_no_bcrypt_work(domain: Domain):
    for n in range(PER_ADDRESS):
        await register(domain, f"user{n}@example.com")
    hashed = len(domain.hasher.hashed)
    assert await register(domain, "late@example.com") == "THROTTLED 3600"
    assert len(domain.hasher.hashed) == hashed


async def test_a_taken_email_counts_and_costs_the_same_hash_as_a_new_one(domain: Domain):
    assert await register(domain, "ada@example.com") == "OK"
    assert await register(domain, "ada@example.com", password="another password") == "TAKEN"
    assert domain.hasher.hashed == [PASSWORD.encode(), b"another password"]
    outcomes = [await register(domain, "ada@example.com") for _ in range(PER_ADDRESS - 1)]
    assert outcomes == ["TAKEN"] * (PER_ADDRESS - 2) + ["THROTTLED 3600"]


async def test_requests_refused_before_hashing_are_not_counted(domain: Domain):
    invalid = [await register(domain, "not an email") for _ in range(PER_ADDRESS)]
    weak = [await register(domain, "ada@example.com", password="short") for _ in range(PER_ADDRESS)]
    assert invalid + weak == ["INVALID"] * (2 * PER_ADDRESS)
    assert [await register(domain, f"user{n}@example.com") for n in range(PER_ADDRESS)] == [
        "OK"
    ] * PER_ADDRESS


@pytest.mark.parametrize("address", [None, "198.51.100.1"])
async def test_an_address_limit_is_per_address_with_callers_without_one_counted_in_all_only(
    domain: Domain, address
):
    """Callers with no address (a Unix socket peer) are limited by the global ceiling alone."""
    client = ClientInfo(ip_address=address)
    outcomes = [await register(domain, f"user{n}@example.com", client) for n in range(PER_ADDRESS + 1)]
    assert outcomes[-1] == ("OK" if address is None else "THROTTLED 3600")
