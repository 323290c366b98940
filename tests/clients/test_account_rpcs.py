"""The account lifecycle RPCs through both clients, against the real server: profile, password change,
reset and email verification through the mail the server writes, account deletion, and disabling an
account as an admin. Plain values in and out; refusals as the exception of their kind with the word."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from authsvc_client import (
    InvalidArgument,
    InvalidCredentials,
    InvalidToken,
    NotFound,
    PermissionDenied,
    Profile,
    UserStatus,
)

from tests.clients.conftest import PASSWORD
from tests.conftest import ServerHandle
from tests.mailbox import Mailbox
from tests.roles import make_admin

# Most wait for the courier to deliver a mail (real timers); tests/domain has the rules fast.
pytestmark = pytest.mark.slow

EMAIL = "ada@example.com"
NEW_PASSWORD = "a brand new passphrase"


async def login(client, email: str = EMAIL):
    await client.register(email, PASSWORD)
    return await client.login(email, PASSWORD)


@pytest.fixture
def mailbox(auth_server: ServerHandle) -> Mailbox:
    return Mailbox(auth_server.settings.data_dir)


async def test_get_profile_answers_the_callers_profile(client, auth_server):
    account = await client.register(EMAIL, PASSWORD)
    pair = await client.login(EMAIL, PASSWORD)

    profile = await client.get_profile(pair.access_token)

    assert isinstance(profile, Profile)
    assert (profile.user_id, profile.email, profile.email_verified) == (account.user_id, EMAIL, False)
    assert (profile.display_name, profile.role) == ("", "user")
    assert profile.created_at.tzinfo == UTC
    assert abs(profile.created_at - auth_server.clock.now) < timedelta(seconds=2)


async def test_update_profile_sets_and_clears_the_display_name(client):
    pair = await login(client)

    named = await client.update_profile(pair.access_token, "  Ada Lovelace ")
    assert named.display_name == "Ada Lovelace"  # trimmed
    assert (await client.get_profile(pair.access_token)).display_name == "Ada Lovelace"
    cleared = await client.update_profile(pair.access_token, "")
    assert cleared.display_name == ""


@pytest.mark.parametrize("name", ["x" * 101, "Ada\nLovelace"], ids=["over 100 characters", "a newline"])
async def test_a_display_name_too_long_or_with_control_characters_is_invalid_argument(client, name):
    pair = await login(client)
    await client.update_profile(pair.access_token, "Ada")
    with pytest.raises(InvalidArgument) as caught:
        await client.update_profile(pair.access_token, name)
    assert caught.value.reason == "DISPLAY_NAME_INVALID"
    assert (await client.get_profile(pair.access_token)).display_name == "Ada"


async def test_a_display_name_of_100_characters_is_taken(client):
    pair = await login(client)
    assert (await client.update_profile(pair.access_token, "é" * 100)).display_name == "é" * 100


async def test_change_password_revokes_the_other_sessions_and_keeps_the_callers(client):
    mine = await login(client)
    other = await client.login(EMAIL, PASSWORD)

    assert await client.change_password(mine.access_token, PASSWORD, NEW_PASSWORD) == 1

    with pytest.raises(InvalidToken) as caught:
        await client.refresh(other.refresh_token)
    assert caught.value.reason == "SESSION_REVOKED"
    assert [s.session_id for s in await client.list_sessions(mine.access_token)] == [mine.session_id]
    with pytest.raises(InvalidCredentials):
        await client.login(EMAIL, PASSWORD)
    await client.login(EMAIL, NEW_PASSWORD)


async def test_change_password_with_a_wrong_current_password_is_invalid_credentials(client):
    pair = await login(client)
    with pytest.raises(InvalidCredentials) as caught:
        await client.change_password(pair.access_token, "not the password", NEW_PASSWORD)
    assert caught.value.reason == "INVALID_CREDENTIALS"
    await client.login(EMAIL, PASSWORD)  # unchanged


async def test_change_password_to_a_weak_one_is_invalid_argument(client):
    pair = await login(client)
    with pytest.raises(InvalidArgument) as caught:
        await client.change_password(pair.access_token, PASSWORD, "short")
    assert caught.value.reason == "WEAK_PASSWORD"


async def test_a_reset_through_the_mailed_link_sets_the_password_and_ends_every_session(client, mailbox):
    pair = await login(client)

    assert await client.forgot_password(EMAIL) is None
    token = await mailbox.next_token("reset", EMAIL)
    assert await client.reset_password(token, NEW_PASSWORD) == 1

    with pytest.raises(InvalidToken):
        await client.refresh(pair.refresh_token)
    await client.login(EMAIL, NEW_PASSWORD)
    with pytest.raises(InvalidArgument) as reused:
        await client.reset_password(token, "yet another passphrase")
    assert reused.value.reason == "RESET_TOKEN_INVALID"


async def test_forgot_password_answers_the_same_for_an_unknown_email_and_mails_nobody(client, mailbox):
    await client.register(EMAIL, PASSWORD)
    assert await client.forgot_password("nobody@example.com") is None
    assert await client.forgot_password(EMAIL) is None
    await mailbox.next_link("reset", EMAIL)
    assert [str(message["To"]) for message in mailbox.messages()] == [EMAIL]


async def test_a_made_up_reset_token_is_invalid_argument(client):
    with pytest.raises(InvalidArgument) as caught:
        await client.reset_password("rst_made-up", NEW_PASSWORD)
    assert caught.value.reason == "RESET_TOKEN_INVALID"


async def test_verifying_the_email_through_the_mailed_link_marks_it_verified(client, mailbox):
    pair = await login(client)

    assert await client.request_email_verification(pair.access_token) is None
    token = await mailbox.next_token("verify", EMAIL)
    assert await client.verify_email(token) is None

    assert (await client.get_profile(pair.access_token)).email_verified is True
    fresh = await client.login(EMAIL, PASSWORD)
    assert (await client.introspect(fresh.access_token)).email_verified is True
    with pytest.raises(InvalidArgument) as reused:
        await client.verify_email(token)
    assert reused.value.reason == "VERIFICATION_TOKEN_INVALID"


async def test_delete_account_needs_the_password_then_ends_the_account(client):
    pair = await login(client)
    with pytest.raises(InvalidCredentials):
        await client.delete_account(pair.access_token, "not the password")

    assert await client.delete_account(pair.access_token, PASSWORD) is None

    with pytest.raises(InvalidCredentials):
        await client.login(EMAIL, PASSWORD)
    with pytest.raises(InvalidToken):
        await client.refresh(pair.refresh_token)
    await client.register(EMAIL, PASSWORD)  # the email is free again


async def test_an_admin_disables_an_account_and_its_login_is_refused_until_enabled(client, auth_server):
    await client.register("admin@example.com", PASSWORD)
    await make_admin(auth_server.running.store, "admin@example.com")
    admin = await client.login("admin@example.com", PASSWORD)
    account = await client.register(EMAIL, PASSWORD)
    victim = await client.login(EMAIL, PASSWORD)

    status = await client.set_user_disabled(admin.access_token, EMAIL, True)

    assert status == UserStatus(user_id=account.user_id, email=EMAIL, disabled=True, revoked_sessions=1)
    with pytest.raises(PermissionDenied) as refused:
        await client.login(EMAIL, PASSWORD)
    assert refused.value.reason == "ACCOUNT_DISABLED"
    with pytest.raises(InvalidToken):
        await client.refresh(victim.refresh_token)
    enabled = await client.set_user_disabled(admin.access_token, EMAIL, False)
    assert (enabled.disabled, enabled.revoked_sessions) == (False, 0)
    await client.login(EMAIL, PASSWORD)


async def test_set_user_disabled_by_a_user_who_is_not_an_admin_is_permission_denied(client):
    pair = await login(client)
    await client.register("bob@example.com", PASSWORD)
    with pytest.raises(PermissionDenied) as caught:
        await client.set_user_disabled(pair.access_token, "bob@example.com", True)
    assert caught.value.reason == "ADMIN_ONLY"
    await client.login("bob@example.com", PASSWORD)


async def test_set_user_disabled_for_an_unknown_email_is_not_found(client, auth_server):
    await client.register("admin@example.com", PASSWORD)
    await make_admin(auth_server.running.store, "admin@example.com")
    admin = await client.login("admin@example.com", PASSWORD)
    with pytest.raises(NotFound) as caught:
        await client.set_user_disabled(admin.access_token, "nobody@example.com", True)
    assert caught.value.reason == "USER_NOT_FOUND"
