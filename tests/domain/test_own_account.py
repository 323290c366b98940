"""The caller's own account (authsvc/domain/account.py): the profile, changing the password (other sessions
revoked, the caller's kept, throttled like Login), and deleting the account with everything it holds."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from authsvc.domain.account import MAX_DISPLAY_NAME, AccountService, check_display_name
from authsvc.domain.audit import ClientInfo
from authsvc.domain.errors import (
    DisplayNameInvalid,
    InvalidCredentials,
    InvalidRequest,
    PasswordTooLong,
    SessionRevoked,
    Throttled,
    TokenInvalid,
    WeakPassword,
)
from authsvc.domain.passwords import hash_cost
from authsvc.domain.sessions import Caller
from authsvc.domain.throttling import KNOWN_PREFIX, LoginThrottle
from authsvc.store import User
from tests.conftest import PASSWORD
from tests.domain.conftest import EMAIL, HERE, LOGIN_POLICY, Domain, MakeDomain

NEW_PASSWORD = "a new and longer passphrase"
WRONG = "not the password"
PAIR_LIMIT = LOGIN_POLICY.max_failures_per_pair


def account_service(domain: Domain) -> AccountService:
    """The account service of the domain's replica, on the same login counters as its AuthService."""
    throttle = LoginThrottle(domain.attempts, LOGIN_POLICY, domain.clock)
    return AccountService(domain.store, domain.hasher, domain.clock, throttle=throttle)


@pytest.fixture
def accounts(domain: Domain) -> AccountService:
    return account_service(domain)


@pytest.fixture
async def caller(domain: Domain) -> Caller:
    """Ada, registered and logged in once."""
    await domain.register()
    return await domain.caller(await domain.login())


async def create_verified_user(domain: Domain) -> User:
    """Ada, whose email is verified (written straight to the store: the way there is a mailed token)."""
    password_hash = await domain.hasher.hash(PASSWORD.encode())
    now = domain.clock()
    user = User(str(uuid.uuid4()), EMAIL, password_hash, "user", now, email_verified_at=now)
    await domain.store.create_user(user)
    return user


async def outcome_of_login(domain: Domain, password: str, client: ClientInfo = HERE) -> str:
    try:
        await domain.login(EMAIL, password, client)
    except InvalidCredentials:
        return "DENIED"
    except Throttled:
        return "THROTTLED"
    return "OK"


# -- the profile --------------------------------------------------------------------------------------


async def test_a_new_profile_comes_from_the_account_row(domain: Domain, accounts, caller):
    profile = await accounts.profile(caller)
    assert (profile.user_id, profile.email, profile.role) == (caller.user_id, EMAIL, "user")
    assert (profile.display_name, profile.email_verified) == ("", False)
    assert profile.created_at == domain.clock()


async def test_the_profile_says_verified_once_the_row_does(domain: Domain, accounts):
    await create_verified_user(domain)
    caller = await domain.caller(await domain.login())
    assert (await accounts.profile(caller)).email_verified is True


async def test_a_display_name_is_trimmed_stored_and_cleared_by_an_empty_one(accounts, caller):
    updated = await accounts.update_profile(caller, "  Ada Lovelace \t", HERE)
    assert updated.display_name == "Ada Lovelace"
    assert (await accounts.profile(caller)).display_name == "Ada Lovelace"
    assert (await accounts.update_profile(caller, "", HERE)).display_name == ""


@pytest.mark.parametrize(
    "name",
    [
        "x" * MAX_DISPLAY_NAME,
        f"  {'é' * MAX_DISPLAY_NAME}  ",  # 100 characters once trimmed, 200 bytes
        "Ada 👩‍💻",  # an emoji sequence: joined by U+200D, a format character
        "Ada Lovelace-Byron (she/her)",
    ],
)
def test_names_up_to_100_characters_without_control_characters_are_taken(name):
    assert check_display_name(name) == name.strip()


@pytest.mark.parametrize(
    "name",
    ["x" * (MAX_DISPLAY_NAME + 1), "Ada\nLovelace", "Ada\x00", "Ada\x1b[31m", "Ada\u2028Lovelace", "A\x7f"],
)
async def test_longer_names_and_control_characters_are_display_name_invalid(accounts, caller, name):
    with pytest.raises(DisplayNameInvalid):
        await accounts.update_profile(caller, name, HERE)
    assert (await accounts.profile(caller)).display_name == ""


# -- changing the password ----------------------------------------------------------------------------


async def test_changing_the_password_revokes_the_other_sessions_and_keeps_the_callers(
    domain: Domain, accounts
):
    await domain.register()
    here, phone, laptop = await domain.login(), await domain.login(), await domain.login()
    revoked = await accounts.change_password(await domain.caller(here), PASSWORD, NEW_PASSWORD, HERE)
    assert revoked == 2
    await domain.caller(here)
    await domain.refresh(here)
    for other in (phone, laptop):
        with pytest.raises(SessionRevoked):
            await domain.caller(other)
        with pytest.raises(SessionRevoked):
            await domain.refresh(other)
    assert (await domain.store.get_session(phone.session_id)).revoked_reason == "password_changed"


async def test_after_a_change_only_the_new_password_logs_in(domain: Domain, accounts, caller):
    await accounts.change_password(caller, PASSWORD, NEW_PASSWORD, HERE)
    with pytest.raises(InvalidCredentials):
        await domain.login(EMAIL, PASSWORD)
    await domain.login(EMAIL, NEW_PASSWORD)


async def test_the_new_password_is_hashed_at_the_current_cost(domain: Domain, make_domain: MakeDomain):
    await domain.register()
    upgraded = make_domain(like=domain, bcrypt_cost=5)  # a replica started after the cost was raised
    caller = await upgraded.caller(await upgraded.login())
    await account_service(upgraded).change_password(caller, PASSWORD, NEW_PASSWORD, HERE)
    assert hash_cost((await domain.store.get_user(caller.user_id)).password_hash) == 5


async def test_a_wrong_current_password_changes_nothing(domain: Domain, accounts):
    await domain.register()
    here, other = await domain.login(), await domain.login()
    with pytest.raises(InvalidCredentials):
        await accounts.change_password(await domain.caller(here), WRONG, NEW_PASSWORD, HERE)
    await domain.caller(other)
    await domain.login(EMAIL, PASSWORD)


@pytest.mark.parametrize(
    ("new_password", "error"),
    [("short", WeakPassword), ("x" * 73, PasswordTooLong), ("é" * 37, PasswordTooLong)],
)
async def test_a_new_password_against_the_policy_is_refused_before_any_bcrypt_work(
    domain: Domain, accounts, caller, new_password, error
):
    checks, hashed = domain.hasher.checks, len(domain.hasher.hashed)
    with pytest.raises(error):
        await accounts.change_password(caller, PASSWORD, new_password, HERE)
    assert (domain.hasher.checks, len(domain.hasher.hashed)) == (checks, hashed)


async def test_an_empty_current_password_is_invalid_request(accounts, caller):
    with pytest.raises(InvalidRequest):
        await accounts.change_password(caller, "", NEW_PASSWORD, HERE)


async def test_wrong_current_passwords_count_against_the_login_throttle(domain: Domain, accounts, caller):
    for _ in range(PAIR_LIMIT):
        with pytest.raises(InvalidCredentials):
            await accounts.change_password(caller, WRONG, NEW_PASSWORD, HERE)
    with pytest.raises(Throttled):
        await accounts.change_password(caller, PASSWORD, NEW_PASSWORD, HERE)
    assert await outcome_of_login(domain, PASSWORD) == "THROTTLED"
    # Only that address is: the owner elsewhere still logs in.
    assert await outcome_of_login(domain, PASSWORD, ClientInfo(ip_address="198.51.100.9")) == "OK"


async def test_wrong_logins_and_wrong_current_passwords_share_one_count(domain: Domain, accounts, caller):
    for _ in range(PAIR_LIMIT - 1):
        assert await outcome_of_login(domain, WRONG) == "DENIED"
    with pytest.raises(InvalidCredentials):
        await accounts.change_password(caller, WRONG, NEW_PASSWORD, HERE)
    assert await outcome_of_login(domain, PASSWORD) == "THROTTLED"


async def test_a_right_current_password_gives_its_attempt_back_as_a_login_does(
    domain: Domain, accounts, caller
):
    for _ in range(PAIR_LIMIT - 1):
        assert await outcome_of_login(domain, WRONG) == "DENIED"
    await accounts.change_password(caller, PASSWORD, NEW_PASSWORD, HERE)
    # The pair's count is cleared, as by a successful login: five more guesses before the block.
    assert [await outcome_of_login(domain, WRONG) for _ in range(PAIR_LIMIT + 1)] == [
        "DENIED"
    ] * PAIR_LIMIT + ["THROTTLED"]


async def test_of_two_concurrent_changes_from_one_password_exactly_one_wins(domain: Domain, accounts, caller):
    outcomes = await asyncio.gather(
        accounts.change_password(caller, PASSWORD, "first new passphrase", HERE),
        accounts.change_password(caller, PASSWORD, "second new passphrase", HERE),
        return_exceptions=True,
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["InvalidCredentials", "int"]
    winner = "first new passphrase" if isinstance(outcomes[0], int) else "second new passphrase"
    await domain.login(EMAIL, winner)


# -- deleting the account -----------------------------------------------------------------------------


async def test_deleting_the_account_ends_every_token_and_frees_the_email(domain: Domain, accounts):
    await domain.register()
    here, other = await domain.login(), await domain.login()
    caller = await domain.caller(here)
    await accounts.delete_account(caller, PASSWORD, HERE)
    for tokens in (here, other):
        with pytest.raises(TokenInvalid):
            await domain.caller(tokens)
        with pytest.raises(TokenInvalid):
            await domain.refresh(tokens)
    assert await domain.store.list_sessions(caller.user_id, domain.clock()) == []
    assert await outcome_of_login(domain, PASSWORD) == "DENIED"
    again = await domain.register()
    assert again.user_id != caller.user_id


async def test_a_wrong_password_deletes_nothing_and_counts_as_a_failed_login(
    domain: Domain, accounts, caller
):
    for _ in range(PAIR_LIMIT):
        with pytest.raises(InvalidCredentials):
            await accounts.delete_account(caller, WRONG, HERE)
    await domain.caller(await domain.login(EMAIL, PASSWORD, ClientInfo(ip_address="198.51.100.9")))
    with pytest.raises(Throttled):
        await accounts.delete_account(caller, PASSWORD, HERE)


async def test_an_empty_password_is_invalid_request(accounts, caller):
    with pytest.raises(InvalidRequest):
        await accounts.delete_account(caller, "", HERE)


async def test_deleting_forgets_that_the_address_was_known_for_the_email(domain: Domain, accounts, caller):
    """The known-address mark's key holds the email: it must not outlive the account."""
    known = f"{KNOWN_PREFIX}{HERE.ip_address}|{EMAIL}"
    assert await domain.attempts.has_mark(known, domain.clock())
    await accounts.delete_account(caller, PASSWORD, HERE)
    assert not await domain.attempts.has_mark(known, domain.clock())


async def test_the_deletion_is_audited_by_user_id_alone(accounts, caller, caplog):
    caplog.set_level(logging.INFO, logger="authsvc.audit")
    await accounts.delete_account(caller, PASSWORD, HERE)
    (event,) = [record for record in caplog.records if getattr(record, "event", None) == "account_deleted"]
    assert event.user_id == caller.user_id
    assert EMAIL not in repr(vars(event))
