"""Logout ends one session, LogoutAll every live session of the caller, each counted once."""

from __future__ import annotations

import pytest

from authsvc.domain.errors import RefreshTokenReused, SessionRevoked, TokenInvalid
from tests.domain.conftest import HERE, TOKEN_POLICY, Domain


async def test_logout_ends_the_session_and_keeps_its_row(domain: Domain):
    await domain.register()
    tokens = await domain.login()
    await domain.auth.logout(tokens.refresh_token, HERE)
    session = await domain.store.get_session(tokens.session_id)
    assert (session.revoked_at, session.revoked_reason) == (domain.clock(), "logout")
    with pytest.raises(SessionRevoked):
        await domain.refresh(tokens)
    with pytest.raises(SessionRevoked):
        await domain.caller(tokens)


async def test_logging_out_twice_with_the_same_token_answers_ok_the_second_time(domain: Domain):
    """Logout is retry-safe: its repeat, after an answer was lost, has the same effect and answer."""
    await domain.register()
    tokens = await domain.login()
    await domain.auth.logout(tokens.refresh_token, HERE)
    await domain.auth.logout(tokens.refresh_token, HERE)
    session = await domain.store.get_session(tokens.session_id)
    assert (session.revoked_at, session.revoked_reason) == (domain.clock(), "logout")


async def test_logging_out_with_the_parent_after_logging_out_answers_ok(domain: Domain):
    await domain.register()
    tokens = await domain.login()
    await domain.refresh(tokens)
    await domain.auth.logout(tokens.refresh_token, HERE)
    await domain.auth.logout(tokens.refresh_token, HERE)


async def test_logging_out_a_session_ended_otherwise_is_session_revoked(domain: Domain):
    await domain.register()
    tokens = await domain.login()
    await domain.auth.logout_all(await domain.caller(tokens), HERE)
    with pytest.raises(SessionRevoked):
        await domain.auth.logout(tokens.refresh_token, HERE)


async def test_logout_ends_only_that_session(domain: Domain):
    await domain.register()
    phone, laptop = await domain.login(), await domain.login()
    await domain.auth.logout(phone.refresh_token, HERE)
    await domain.refresh(laptop)


async def test_logout_with_the_parent_inside_the_grace_window_ends_the_session(domain: Domain):
    """A client that lost the answer of its last refresh can still log out with the token it has."""
    await domain.register()
    tokens = await domain.login()
    child = await domain.refresh(tokens)
    await domain.auth.logout(tokens.refresh_token, HERE)
    with pytest.raises(SessionRevoked):
        await domain.refresh(child)


async def test_logout_with_the_parent_after_the_grace_window_is_reuse(domain: Domain):
    await domain.register()
    tokens = await domain.login()
    await domain.refresh(tokens)
    domain.clock.advance(TOKEN_POLICY.refresh_grace.total_seconds() + 1)
    with pytest.raises(RefreshTokenReused):
        await domain.auth.logout(tokens.refresh_token, HERE)
    assert (await domain.store.get_session(tokens.session_id)).revoked_reason == "reuse_detected"


async def test_logout_with_junk_is_token_invalid(domain: Domain):
    with pytest.raises(TokenInvalid):
        await domain.auth.logout("junk", HERE)


async def test_logout_all_revokes_every_live_session_of_the_caller_and_counts_them(domain: Domain):
    await domain.register()
    sessions = [await domain.login() for _ in range(3)]
    await domain.auth.logout(sessions[0].refresh_token, HERE)
    caller = await domain.caller(sessions[1])
    assert await domain.auth.logout_all(caller, HERE) == 2
    for tokens in sessions:
        with pytest.raises(SessionRevoked):
            await domain.refresh(tokens)
    assert [(await domain.store.get_session(tokens.session_id)).revoked_reason for tokens in sessions] == [
        "logout",
        "logout_all",
        "logout_all",
    ]


async def test_logout_all_leaves_other_users_alone(domain: Domain):
    await domain.register()
    await domain.register("bob@example.com")
    ada, bob = await domain.login(), await domain.login("bob@example.com")
    assert await domain.auth.logout_all(await domain.caller(ada), HERE) == 1
    await domain.refresh(bob)


async def test_logout_all_with_only_the_callers_session_counts_one(domain: Domain):
    await domain.register()
    tokens = await domain.login()
    assert await domain.auth.logout_all(await domain.caller(tokens), HERE) == 1
