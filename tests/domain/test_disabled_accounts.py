"""Operators and accounts (authsvc/domain/admin.py): disabling ends every session at once and Login answers
ACCOUNT_DISABLED only to the right password; the admin RPC's rule reads the role from the users table."""

from __future__ import annotations

import asyncio

import pytest

from authsvc.domain.admin import AdminService
from authsvc.domain.errors import (
    AccountDisabled,
    AdminOnly,
    InvalidCredentials,
    InvalidEmail,
    InvalidRequest,
    SessionRevoked,
    UserNotFound,
)
from tests.conftest import PASSWORD
from tests.domain.conftest import EMAIL, HERE, LOGIN_POLICY, Domain

PAIR_LIMIT = LOGIN_POLICY.max_failures_per_pair
ADMIN_EMAIL = "grace@example.com"


@pytest.fixture
def admin(domain: Domain) -> AdminService:
    return AdminService(domain.store, domain.clock)


async def test_disabling_ends_every_session_at_once(domain: Domain, admin):
    await domain.register()
    phone, laptop = await domain.login(), await domain.login()
    outcome = await admin.set_disabled(EMAIL, True)
    assert outcome.revoked_sessions == 2
    assert outcome.account.disabled_at == domain.clock()
    for tokens in (phone, laptop):
        with pytest.raises(SessionRevoked):
            await domain.caller(tokens)
        with pytest.raises(SessionRevoked):
            await domain.refresh(tokens)
    assert (await domain.store.get_session(phone.session_id)).revoked_reason == "account_disabled"


async def test_a_disabled_account_logging_in_with_its_password_is_account_disabled(domain: Domain, admin):
    await domain.register()
    await admin.set_disabled(EMAIL, True)
    with pytest.raises(AccountDisabled):
        await domain.login()
    assert (
        await domain.store.list_sessions((await domain.store.get_user_by_email(EMAIL)).id, domain.clock())
        == []
    )


async def test_a_wrong_password_for_a_disabled_account_is_just_invalid_credentials(domain: Domain, admin):
    """Without the password nobody learns that the account is disabled (or exists)."""
    await domain.register()
    await admin.set_disabled(EMAIL, True)
    with pytest.raises(InvalidCredentials):
        await domain.login(EMAIL, "not the password")


async def test_the_right_password_of_a_disabled_account_is_no_failed_attempt(domain: Domain, admin):
    await domain.register()
    await admin.set_disabled(EMAIL, True)
    for _ in range(PAIR_LIMIT + 2):
        with pytest.raises(AccountDisabled):
            await domain.login()
    await admin.set_disabled(EMAIL, False)
    await domain.login()


async def test_an_enabled_account_logs_in_again_but_its_old_sessions_stay_ended(domain: Domain, admin):
    await domain.register()
    before = await domain.login()
    await admin.set_disabled(EMAIL, True)
    outcome = await admin.set_disabled(" ADA@example.com ", False)
    assert (outcome.account.disabled_at, outcome.revoked_sessions) == (None, 0)
    await domain.caller(await domain.login())
    with pytest.raises(SessionRevoked):
        await domain.refresh(before)


async def test_a_login_whose_password_check_races_a_disable_opens_no_session(
    domain: Domain, admin, monkeypatch
):
    """The login read the account as enabled before the disable; the store refuses its session."""
    await domain.register()
    checking, release = asyncio.Event(), asyncio.Event()
    verify = domain.hasher.verify

    async def held_verify(password: str, password_hash: str | None) -> bool:
        checking.set()
        await release.wait()
        return await verify(password, password_hash)

    monkeypatch.setattr(domain.hasher, "verify", held_verify)
    login = asyncio.create_task(domain.login())
    await checking.wait()
    await admin.set_disabled(EMAIL, True)
    release.set()
    with pytest.raises(AccountDisabled):
        await login
    user = await domain.store.get_user_by_email(EMAIL)
    assert await domain.store.list_sessions(user.id, domain.clock()) == []


@pytest.mark.parametrize("disabled", [True, False])
async def test_an_unknown_email_is_user_not_found_and_a_malformed_one_invalid_email(admin, disabled):
    with pytest.raises(UserNotFound):
        await admin.set_disabled("nobody@example.com", disabled)
    with pytest.raises(InvalidEmail):
        await admin.set_disabled("not an email", disabled)


# -- the admin RPC's rule -----------------------------------------------------------------------------


async def test_a_user_who_is_not_admin_may_not_disable_anyone(domain: Domain, admin):
    await domain.register()
    await domain.register(ADMIN_EMAIL)
    caller = await domain.caller(await domain.login(ADMIN_EMAIL))
    with pytest.raises(AdminOnly):
        await admin.set_disabled_by(caller, EMAIL, True, HERE)
    await domain.login()  # still enabled


async def test_an_admin_disables_and_enables_an_account(domain: Domain, admin):
    await domain.register()
    await domain.login()
    await domain.register(ADMIN_EMAIL)
    await admin.set_role(ADMIN_EMAIL, "admin")
    caller = await domain.caller(await domain.login(ADMIN_EMAIL))
    outcome = await admin.set_disabled_by(caller, EMAIL, True, HERE)
    assert (outcome.account.profile.email, outcome.revoked_sessions) == (EMAIL, 1)
    with pytest.raises(AccountDisabled):
        await domain.login()
    await admin.set_disabled_by(caller, EMAIL, False, HERE)
    await domain.login()


async def test_a_demoted_admins_token_no_longer_works_though_it_says_admin(domain: Domain, admin):
    await domain.register()
    await domain.register(ADMIN_EMAIL)
    await admin.set_role(ADMIN_EMAIL, "admin")
    caller = await domain.caller(await domain.login(ADMIN_EMAIL))
    assert caller.role == "admin"
    await admin.set_role(ADMIN_EMAIL, "user")
    with pytest.raises(AdminOnly):
        await admin.set_disabled_by(caller, EMAIL, True, HERE)


async def test_a_promoted_users_token_works_at_once_though_it_says_user(domain: Domain, admin):
    await domain.register()
    await domain.register(ADMIN_EMAIL)
    caller = await domain.caller(await domain.login(ADMIN_EMAIL))
    await admin.set_role(ADMIN_EMAIL, "admin")
    assert caller.role == "user"
    assert (await admin.set_disabled_by(caller, EMAIL, True, HERE)).account.disabled_at is not None


# -- what the `authsvc users` commands show -----------------------------------------------------------


async def test_accounts_are_listed_oldest_first_with_their_flags(domain: Domain, admin):
    await domain.register()
    domain.clock.advance(60)
    await domain.register(ADMIN_EMAIL)
    await admin.set_disabled(ADMIN_EMAIL, True)
    listed = await admin.list_accounts(10)
    assert [(a.profile.email, a.disabled_at is not None) for a in listed] == [
        (EMAIL, False),
        (ADMIN_EMAIL, True),
    ]
    assert [a.profile.email for a in await admin.list_accounts(1)] == [EMAIL]
    with pytest.raises(InvalidRequest):
        await admin.list_accounts(0)


async def test_show_counts_the_live_sessions(domain: Domain, admin):
    await domain.register()
    first = await domain.login()
    await domain.login()
    await domain.auth.logout(first.refresh_token, HERE)
    details = await admin.show("Ada@Example.com")
    assert (details.account.profile.email, details.live_sessions) == (EMAIL, 1)
    with pytest.raises(UserNotFound):
        await admin.show("nobody@example.com")


async def test_only_the_two_roles_can_be_set(domain: Domain, admin):
    await domain.register()
    with pytest.raises(InvalidRequest):
        await admin.set_role(EMAIL, "root")
    with pytest.raises(UserNotFound):
        await admin.set_role("nobody@example.com", "admin")
    assert (await admin.set_role(EMAIL, "admin")).profile.role == "admin"
    assert (await domain.caller(await domain.login(EMAIL, PASSWORD))).role == "admin"
