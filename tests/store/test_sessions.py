"""Sessions on every backend: open, read, list, and delete old ones."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest

from authsvc.store import AlreadyExists, NotFound, Rotation, SessionStanding
from tests.store.conftest import DAY, T0, new_session, new_user


async def test_a_new_session_starts_at_generation_zero_with_all_times_set(store):
    user = new_user()
    await store.create_user(user)
    opened = await store.create_session(new_session(user, user_agent="curl/8", ip_address="10.0.0.1"))
    assert (opened.generation, opened.previous_token_hash, opened.revoked_at) == (0, None, None)
    assert opened.created_at == opened.refreshed_at == opened.last_used_at == T0
    assert (opened.user_agent, opened.ip_address) == ("curl/8", "10.0.0.1")
    assert await store.get_session(opened.id) == opened


async def test_a_session_for_a_missing_user_is_not_found(store):
    with pytest.raises(NotFound):
        await store.create_session(new_session(new_user()))


async def test_a_missing_session_is_not_found(store):
    with pytest.raises(NotFound):
        await store.get_session("no-such-session")


async def test_session_times_come_back_utc_aware_whatever_zone_went_in(store):
    user = new_user()
    await store.create_user(user)
    paris = T0.astimezone(ZoneInfo("Europe/Paris"))
    opened = await store.create_session(new_session(user, created_at=paris))
    read = await store.get_session(opened.id)
    for moment in (read.created_at, read.refreshed_at, read.last_used_at, read.expires_at):
        assert moment.tzinfo == UTC
    assert read.created_at == T0


async def test_naive_times_are_refused(store):
    user = new_user()
    await store.create_user(user)
    with pytest.raises(ValueError, match="naive"):
        await store.create_session(new_session(user, created_at=T0.replace(tzinfo=None)))


async def test_list_sessions_gives_live_sessions_only_newest_first(store, user_with_sessions):
    user, (old, middle, new, short) = await user_with_sessions(4)
    await store.revoke_session(middle.id, "logout", T0 + DAY)
    # `short` expires before the listing time.
    await store.revoke_session(short.id, "logout", T0 + DAY)
    expiring = await store.create_session(new_session(user, created_at=T0, ttl=timedelta(hours=1)))
    listed = await store.list_sessions(user.id, T0 + DAY)
    assert [s.id for s in listed] == [new.id, old.id]
    assert expiring.id not in {s.id for s in listed}


async def test_list_sessions_shows_only_the_users_own(store, user_with_sessions):
    ada, ada_sessions = await user_with_sessions(2)
    bob, bob_sessions = await user_with_sessions(1)
    assert {s.id for s in await store.list_sessions(ada.id, T0)} == {s.id for s in ada_sessions}
    assert [s.id for s in await store.list_sessions(bob.id, T0)] == [bob_sessions[0].id]


async def test_delete_sessions_before_removes_expired_and_revoked_in_batches(store, user_with_sessions):
    user, sessions = await user_with_sessions(5)
    for doomed in sessions[:2]:
        await store.revoke_session(doomed.id, "logout", T0 + DAY)
    expired = [
        await store.create_session(new_session(user, created_at=T0, ttl=timedelta(hours=1))) for _ in range(3)
    ]
    cutoff = T0 + 2 * DAY
    assert await store.delete_sessions_before(cutoff, batch_size=2) == 2
    assert await store.delete_sessions_before(cutoff, batch_size=2) == 2
    assert await store.delete_sessions_before(cutoff, batch_size=2) == 1
    assert await store.delete_sessions_before(cutoff, batch_size=2) == 0
    for gone in [*sessions[:2], *expired]:
        with pytest.raises(NotFound):
            await store.get_session(gone.id)
    assert len(await store.list_sessions(user.id, T0 + DAY)) == 3


async def test_delete_sessions_before_keeps_rows_revoked_after_the_cutoff(store, user_with_sessions):
    _, (recent,) = await user_with_sessions(1)
    await store.revoke_session(recent.id, "logout", T0 + 3 * DAY)
    assert await store.delete_sessions_before(T0 + 2 * DAY, batch_size=100) == 0
    assert (await store.get_session(recent.id)).revoked_reason == "logout"


async def test_a_taken_session_id_is_already_exists(store, user_with_sessions):
    user, (session,) = await user_with_sessions(1)
    with pytest.raises(AlreadyExists):
        await store.create_session(new_session(user, id=session.id))
    assert await store.get_session(session.id) == session


async def test_an_overlong_address_is_dropped_and_an_overlong_user_agent_cut(store):
    """A cut address would be another address; a cut user agent is still the start of the same one."""
    user = new_user()
    await store.create_user(user)
    opened = await store.create_session(new_session(user, user_agent="u" * 600, ip_address="f" * 500))
    assert (opened.ip_address, opened.user_agent) == (None, "u" * 512)
    assert await store.get_session(opened.id) == opened


async def test_sessions_created_in_the_same_instant_list_by_id(store):
    user = new_user()
    await store.create_user(user)
    ids = sorted([str(uuid.uuid4()) for _ in range(3)])
    for session_id in reversed(ids):
        await store.create_session(new_session(user, id=session_id))
    assert [s.id for s in await store.list_sessions(user.id, T0)] == ids


async def test_session_standing_tells_owner_revoked_and_expired(store, user_with_sessions):
    user, (live, revoked) = await user_with_sessions(2)
    await store.revoke_session(revoked.id, "logout", T0 + DAY)
    assert await store.session_standing(live.id, T0 + DAY) == SessionStanding(user.id, False, False)
    assert await store.session_standing(revoked.id, T0 + DAY) == SessionStanding(user.id, True, False)
    # Expired from the moment of `expires_at` on, as a live session's `expires_at > now`.
    assert await store.session_standing(live.id, live.expires_at) == SessionStanding(user.id, False, True)
    assert not (await store.session_standing(live.id, live.expires_at - timedelta(microseconds=1))).expired
    with pytest.raises(NotFound):
        await store.session_standing("no-such-session", T0)


async def test_naive_times_are_refused_by_every_session_call(store, user_with_sessions):
    user, (opened,) = await user_with_sessions(1)
    naive = T0.replace(tzinfo=None)
    calls = [
        store.session_standing(opened.id, naive),
        store.list_sessions(user.id, naive),
        store.rotate_session(Rotation(opened.id, 0, opened.token_hash, b"n" * 32, naive, naive + DAY)),
        store.revoke_session(opened.id, "logout", naive),
        store.revoke_session(opened.id, "logout", naive, token_hash=opened.token_hash),
        store.revoke_all_sessions(user.id, "logout_all", naive),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="naive"):
            await call
    assert (await store.get_session(opened.id)).revoked_at is None
