"""Revocation on every backend: one session, one of a user's, all of a user's with the count."""

from __future__ import annotations

import os

from tests.store.conftest import DAY, T0

LATER = T0 + DAY


async def test_revoking_a_live_session_marks_it_and_keeps_the_row(store, user_with_sessions):
    _, (session,) = await user_with_sessions(1)
    assert await store.revoke_session(session.id, "logout", LATER) == session.user_id
    revoked = await store.get_session(session.id)
    assert (revoked.revoked_at, revoked.revoked_reason) == (LATER, "logout")


async def test_revoking_twice_or_a_missing_session_matches_nothing(store, user_with_sessions):
    _, (session,) = await user_with_sessions(1)
    await store.revoke_session(session.id, "logout", LATER)
    assert await store.revoke_session(session.id, "again", LATER) is None
    assert (await store.get_session(session.id)).revoked_reason == "logout"
    assert await store.revoke_session("no-such-session", "logout", LATER) is None


async def test_revoking_an_expired_session_matches_nothing(store, user_with_sessions):
    _, (session,) = await user_with_sessions(1)
    assert await store.revoke_session(session.id, "logout", T0 + 31 * DAY) is None
    assert (await store.get_session(session.id)).revoked_at is None


async def test_revoking_with_a_token_hash_needs_the_current_token(store, user_with_sessions):
    _, (session,) = await user_with_sessions(1)
    assert await store.revoke_session(session.id, "logout", LATER, token_hash=os.urandom(32)) is None
    assert (await store.get_session(session.id)).revoked_at is None
    assert (
        await store.revoke_session(session.id, "logout", LATER, token_hash=session.token_hash)
        == session.user_id
    )


async def test_a_user_cannot_revoke_another_users_session(store, user_with_sessions):
    ada, (ada_session,) = await user_with_sessions(1)
    bob, _ = await user_with_sessions(1)
    assert await store.revoke_user_session(bob.id, ada_session.id, "revoked_by_user", LATER) is False
    assert (await store.get_session(ada_session.id)).revoked_at is None
    assert await store.revoke_user_session(ada.id, ada_session.id, "revoked_by_user", LATER) is True
    assert await store.revoke_user_session(ada.id, ada_session.id, "revoked_by_user", LATER) is False


async def test_revoke_all_counts_only_the_live_sessions_it_revoked(store, user_with_sessions):
    ada, sessions = await user_with_sessions(4)
    _, (bob_session,) = await user_with_sessions(1)
    await store.revoke_session(sessions[0].id, "logout", LATER)
    assert await store.revoke_all_sessions(ada.id, "logout_all", LATER) == 3
    for session in sessions[1:]:
        revoked = await store.get_session(session.id)
        assert (revoked.revoked_at, revoked.revoked_reason) == (LATER, "logout_all")
    assert (await store.get_session(sessions[0].id)).revoked_reason == "logout"
    assert (await store.get_session(bob_session.id)).revoked_at is None
    assert await store.revoke_all_sessions(ada.id, "logout_all", LATER) == 0


async def test_revoke_all_skips_expired_sessions(store, user_with_sessions):
    ada, _ = await user_with_sessions(2)
    assert await store.revoke_all_sessions(ada.id, "logout_all", T0 + 31 * DAY) == 0


async def test_revoke_all_for_a_user_with_no_sessions_is_zero(store):
    assert await store.revoke_all_sessions("no-such-user", "logout_all", LATER) == 0
