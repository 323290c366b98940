"""Registering and logging in: normalised emails, one answer for every failed login, a session per login."""

from __future__ import annotations

import pytest

from authsvc.domain.audit import ClientInfo
from authsvc.domain.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidEmail,
    InvalidRequest,
    PasswordTooLong,
    WeakPassword,
)
from authsvc.domain.passwords import hash_cost
from tests.conftest import PASSWORD
from tests.domain.conftest import EMAIL, Domain, MakeDomain


async def test_registering_trims_and_lower_cases_the_email(domain: Domain):
    registered = await domain.register("  Ada@Example.COM ")
    assert registered.email == EMAIL
    assert (await domain.store.get_user(registered.user_id)).email == EMAIL


async def test_a_registered_user_logs_in_with_any_casing_of_the_email(domain: Domain):
    await domain.register()
    tokens = await domain.login("ADA@example.com")
    assert (await domain.caller(tokens)).email == EMAIL


@pytest.mark.parametrize("again", [EMAIL, "ADA@EXAMPLE.COM", " ada@example.com"])
async def test_registering_an_email_twice_is_email_taken_whatever_the_spelling(domain: Domain, again):
    await domain.register()
    with pytest.raises(EmailTaken):
        await domain.register(again)


@pytest.mark.parametrize(
    ("email", "password", "error"),
    [
        ("not-an-email", PASSWORD, InvalidEmail),
        ("", PASSWORD, InvalidEmail),
        (EMAIL, "short", WeakPassword),
        (EMAIL, "é" * 37, PasswordTooLong),  # 74 bytes in UTF-8
    ],
)
async def test_an_invalid_registration_says_why_and_creates_nothing(domain: Domain, email, password, error):
    with pytest.raises(error):
        await domain.register(email, password)
    assert domain.hasher.hashed == []
    await domain.register()  # the email is still free


async def test_a_password_of_exactly_72_bytes_is_accepted(domain: Domain):
    await domain.register(password="é" * 36)
    await domain.login(password="é" * 36)


async def test_unknown_email_and_wrong_password_are_the_same_error_after_the_same_bcrypt_work(domain: Domain):
    await domain.register()
    with pytest.raises(InvalidCredentials) as wrong_password:
        await domain.login(password="wrong password")
    with pytest.raises(InvalidCredentials) as unknown_email:
        await domain.login("bob@example.com")
    assert str(wrong_password.value) == str(unknown_email.value)
    assert domain.hasher.checks == 2


async def test_a_login_without_a_password_is_invalid_before_any_bcrypt_work(domain: Domain):
    await domain.register()
    with pytest.raises(InvalidRequest):
        await domain.login(password="")
    assert domain.hasher.checks == 0


async def test_each_login_opens_a_new_session_recording_the_client(domain: Domain):
    registered = await domain.register()
    first = await domain.login(client=ClientInfo(user_agent="phone", ip_address="198.51.100.1"))
    second = await domain.login(client=ClientInfo(user_agent="u" * 600, ip_address="2001:db8::1"))
    assert first.session_id != second.session_id
    sessions = {s.id: s for s in await domain.store.list_sessions(registered.user_id, domain.clock())}
    assert (sessions[first.session_id].user_agent, sessions[first.session_id].ip_address) == (
        "phone",
        "198.51.100.1",
    )
    assert (sessions[second.session_id].user_agent, sessions[second.session_id].ip_address) == (
        "u" * 512,
        "2001:db8::1",
    )


async def test_a_login_answers_a_bearer_pair_with_the_policys_lifetimes(domain: Domain):
    await domain.register()
    tokens = await domain.login()
    assert (tokens.token_type, tokens.expires_in, tokens.refresh_expires_in) == ("Bearer", 900, 30 * 86_400)


async def test_a_raised_bcrypt_cost_rehashes_the_password_at_the_next_login(make_domain: MakeDomain):
    old = make_domain(bcrypt_cost=4)
    registered = await old.register()
    raised = make_domain(bcrypt_cost=5, like=old)
    await raised.login()
    assert hash_cost((await raised.store.get_user(registered.user_id)).password_hash) == 5
    await raised.login()  # the new hash checks
