"""The account lifecycle on every backend: profile fields, password change, deletion, disabling, roles."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from authsvc.store import ACCOUNT_DISABLED_REASON, NotFound, Rotation, UserDisabled
from tests.store.conftest import DAY, T0, new_session, new_user
from tests.store.test_account_tokens import mail_to, outbox_of, token

LATER = T0 + timedelta(minutes=30)


async def test_a_new_account_has_no_display_name_and_is_neither_verified_nor_disabled(store):
    user = new_user()
    await store.create_user(user)
    read = await store.get_user(user.id)
    assert (read.display_name, read.email_verified, read.disabled) == ("", False, False)


async def test_the_lifecycle_fields_read_back_as_written(store):
    user = dataclasses.replace(new_user(), display_name="Ada", email_verified_at=T0, disabled_at=LATER)
    await store.create_user(user)
    assert await store.get_user(user.id) == user
    assert (user.email_verified, user.disabled) == (True, True)


async def test_a_display_name_is_stored_and_returned(store):
    user = new_user()
    await store.create_user(user)
    updated = await store.update_display_name(user.id, "Ada Lovelace")
    assert updated == dataclasses.replace(user, display_name="Ada Lovelace")
    assert await store.get_user(user.id) == updated
    assert (await store.update_display_name(user.id, "")).display_name == ""


async def test_the_display_name_of_a_missing_user_is_not_found(store):
    with pytest.raises(NotFound):
        await store.update_display_name("no-such-user", "Ada")


async def test_changing_the_password_revokes_every_other_live_session_and_keeps_one(
    store, user_with_sessions
):
    user, (kept, other, already_revoked) = await user_with_sessions(3)
    await store.revoke_session(already_revoked.id, "logout", T0 + DAY)
    revoked = await store.change_password(
        user.id,
        old_hash=user.password_hash,
        new_hash="$2b$04$new",
        keep_session_id=kept.id,
        reason="password_changed",
        now=T0 + DAY,
    )
    assert revoked == 1
    assert (await store.get_user(user.id)).password_hash == "$2b$04$new"
    assert [s.id for s in await store.list_sessions(user.id, T0 + DAY)] == [kept.id]
    assert (await store.get_session(other.id)).revoked_reason == "password_changed"
    assert (await store.get_session(already_revoked.id)).revoked_reason == "logout"


async def test_a_password_change_from_a_stale_hash_changes_nothing(store, user_with_sessions):
    user, (kept, _other) = await user_with_sessions(2)
    await store.rotate_password_hash(user.id, user.password_hash, "$2b$04$reset")
    answer = await store.change_password(
        user.id,
        old_hash=user.password_hash,
        new_hash="$2b$04$new",
        keep_session_id=kept.id,
        reason="password_changed",
        now=T0 + DAY,
    )
    assert answer is None
    assert (await store.get_user(user.id)).password_hash == "$2b$04$reset"
    assert len(await store.list_sessions(user.id, T0 + DAY)) == 2


async def test_a_password_change_of_a_missing_user_changes_nothing(store):
    answer = await store.change_password(
        "no-such-user", old_hash="a", new_hash="b", keep_session_id="s", reason="password_changed", now=T0
    )
    assert answer is None


async def test_deleting_a_user_takes_their_sessions_and_frees_the_email(store, user_with_sessions):
    user, sessions = await user_with_sessions(2, email="ada@example.com")
    _bystander, (theirs,) = await user_with_sessions(1)
    assert await store.delete_user(user.id, user.password_hash) is True
    with pytest.raises(NotFound):
        await store.get_user(user.id)
    with pytest.raises(NotFound):
        await store.get_user_by_email("ada@example.com")
    for session in sessions:
        with pytest.raises(NotFound):
            await store.get_session(session.id)
    assert await store.list_sessions(user.id, T0) == []
    assert await store.revoke_all_sessions(user.id, "logout_all", T0) == 0
    assert await store.get_session(theirs.id) == theirs
    await store.create_user(new_user("ada@example.com"))


async def test_deleting_a_user_takes_their_account_tokens_and_every_mail_to_their_email(store):
    ada, grace = new_user("ada@example.com"), new_user("grace@example.com")
    for user in (ada, grace):
        await store.create_user(user)
    outbox = outbox_of(store)
    sent_before = mail_to(ada.email)
    await outbox.enqueue(sent_before)
    (claimed,) = await outbox.claim(T0, timedelta(minutes=5), 10)
    await outbox.mark_sent(claimed, T0)  # a sent mail's row still names the address
    tokens, mails = {}, {}
    for user in (ada, grace):
        tokens[user.email] = token()
        mails[user.email] = mail_to(user.email)
        await store.create_reset_token(user.email, tokens[user.email], mails[user.email])

    assert await store.delete_user(ada.id, ada.password_hash) is True
    for mail in (sent_before, mails[ada.email]):
        assert await outbox.find(mail.id) is None
    assert await outbox.find(mails[grace.email].id) is not None
    # Only Grace's token is left to expire.
    assert await store.delete_account_tokens_before(T0 + 365 * DAY, 100) == 1


async def test_a_user_is_deleted_only_while_the_checked_hash_is_theirs(store, user_with_sessions):
    user, (session,) = await user_with_sessions(1)
    assert await store.delete_user(user.id, "$2b$04$stale") is False
    assert await store.get_user(user.id) == user
    assert await store.get_session(session.id) == session
    assert await store.delete_user("no-such-user", user.password_hash) is False


async def test_disabling_revokes_every_live_session_and_refuses_new_ones(store, user_with_sessions):
    user, sessions = await user_with_sessions(2, email="ada@example.com")
    change = await store.set_user_disabled("ada@example.com", True, LATER)
    assert change.revoked_sessions == 2
    assert change.user == dataclasses.replace(user, disabled_at=LATER)
    assert await store.get_user(user.id) == change.user
    for session in sessions:
        read = await store.get_session(session.id)
        assert (read.revoked_at, read.revoked_reason) == (LATER, ACCOUNT_DISABLED_REASON)
    with pytest.raises(UserDisabled):
        await store.create_session(new_session(user, created_at=LATER))
    assert await store.list_sessions(user.id, LATER) == []


async def test_disabling_again_keeps_the_first_moment(store, user_with_sessions):
    await user_with_sessions(0, email="ada@example.com")
    await store.set_user_disabled("ada@example.com", True, T0)
    again = await store.set_user_disabled("ada@example.com", True, LATER)
    assert (again.user.disabled_at, again.revoked_sessions) == (T0, 0)


async def test_enabling_allows_new_sessions_but_revives_no_old_one(store, user_with_sessions):
    user, (old,) = await user_with_sessions(1, email="ada@example.com")
    await store.set_user_disabled("ada@example.com", True, T0)
    change = await store.set_user_disabled("ada@example.com", False, LATER)
    assert (change.user.disabled_at, change.revoked_sessions) == (None, 0)
    opened = await store.create_session(new_session(user, created_at=LATER))
    assert [s.id for s in await store.list_sessions(user.id, LATER)] == [opened.id]
    assert (await store.get_session(old.id)).revoked_at == T0


async def test_disabling_touches_no_other_account(store, user_with_sessions):
    await user_with_sessions(1, email="ada@example.com")
    bystander, (theirs,) = await user_with_sessions(1, email="bob@example.com")
    await store.set_user_disabled("ada@example.com", True, LATER)
    assert await store.get_session(theirs.id) == theirs
    assert not (await store.get_user(bystander.id)).disabled


@pytest.mark.parametrize("disabled", [True, False])
async def test_disabling_or_enabling_an_unknown_email_is_not_found(store, disabled):
    with pytest.raises(NotFound):
        await store.set_user_disabled("nobody@example.com", disabled, T0)


async def test_no_login_racing_a_disable_leaves_a_live_session(store):
    """Each round races logins (create_session) against one disable: every session that got in must be
    revoked by it, whichever order the database ran them in (on PostgreSQL, the FOR SHARE row lock)."""
    for round_number in range(20):
        user = new_user(f"racer{round_number}@example.com")
        await store.create_user(user)
        logins = [store.create_session(new_session(user, created_at=T0)) for _ in range(6)]
        disable = store.set_user_disabled(user.email, True, T0)
        outcomes = await asyncio.gather(*logins[:3], disable, *logins[3:], return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, UserDisabled):
                raise outcome
        assert await store.list_sessions(user.id, T0) == [], f"round {round_number}"


async def test_a_role_is_set_by_email(store, user_with_sessions):
    user, _ = await user_with_sessions(0, email="ada@example.com")
    promoted = await store.set_user_role("ada@example.com", "admin")
    assert promoted == dataclasses.replace(user, role="admin")
    assert await store.get_user(user.id) == promoted
    with pytest.raises(NotFound):
        await store.set_user_role("nobody@example.com", "admin")


async def test_users_are_listed_oldest_first_up_to_the_limit(store):
    newest = new_user("c@example.com", created_at=T0 + 2 * DAY)
    oldest = new_user("a@example.com", created_at=T0)
    middle = new_user("b@example.com", created_at=T0 + DAY)
    for user in (newest, oldest, middle):
        await store.create_user(user)
    assert await store.list_users(10) == [oldest, middle, newest]
    assert await store.list_users(2) == [oldest, middle]


async def test_a_rotation_tells_whether_the_owner_verified_their_email(store):
    verified = dataclasses.replace(new_user(), email_verified_at=T0)
    unverified = new_user()
    for user in (verified, unverified):
        await store.create_user(user)
        opened = await store.create_session(new_session(user))
        rotation = Rotation(opened.id, 0, opened.token_hash, b"n" * 32, LATER, LATER + DAY)
        rotated = await store.rotate_session(rotation)
        assert rotated is not None
        assert rotated.owner_email_verified is user.email_verified


async def test_changing_the_password_voids_the_reset_links_mailed_before(store, user_with_sessions):
    user, (kept,) = await user_with_sessions(1)
    mailed = token()
    await store.create_reset_token(user.email, mailed, mail_to(user.email))
    await store.change_password(
        user.id,
        old_hash=user.password_hash,
        new_hash="$2b$04$new",
        keep_session_id=kept.id,
        reason="password_changed",
        now=T0 + timedelta(minutes=1),
    )
    # A link from before the change (in a mailbox someone else may read) cannot undo it.
    assert await store.reset_password(mailed.token_hash, "$2b$04$other", "password_reset", T0) is None
    assert (await store.get_user(user.id)).password_hash == "$2b$04$new"
