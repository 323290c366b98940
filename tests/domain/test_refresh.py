"""Refresh rotation: the presented token is spent by compare-and-set; the immediate parent replayed within
the grace window gets the same child back; any other spent token is reuse and revokes the session."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from authsvc.domain.errors import (
    RefreshTokenReused,
    SessionRevoked,
    TokenExpired,
    TokenInvalid,
    TokenTooLong,
)
from authsvc.domain.refresh_tokens import RefreshTokenMac
from authsvc.domain.service import IssuedTokens
from tests.domain.conftest import HERE, TOKEN_POLICY, Domain, MakeDomain

GRACE = TOKEN_POLICY.refresh_grace.total_seconds()
DAY = 86_400


@pytest.fixture
async def logged_in(domain: Domain) -> IssuedTokens:
    await domain.register()
    return await domain.login()


async def test_a_refresh_answers_a_new_pair_for_the_same_session(domain: Domain, logged_in):
    renewed = await domain.refresh(logged_in)
    assert renewed.session_id == logged_in.session_id
    assert renewed.refresh_token != logged_in.refresh_token
    assert renewed.access_token != logged_in.access_token
    session = await domain.store.get_session(logged_in.session_id)
    assert session.generation == 1


async def test_the_child_refreshes_again_and_the_generations_count_up(domain: Domain, logged_in):
    tokens = logged_in
    for _ in range(3):
        tokens = await domain.refresh(tokens)
    assert (await domain.store.get_session(tokens.session_id)).generation == 3


async def test_the_parent_replayed_inside_the_grace_window_gets_the_same_child(domain: Domain, logged_in):
    child = await domain.refresh(logged_in)
    domain.clock.advance(GRACE)
    replayed = await domain.refresh(logged_in)
    assert replayed.refresh_token == child.refresh_token
    assert (await domain.store.get_session(logged_in.session_id)).generation == 1
    await domain.refresh(replayed)  # the child is still current


async def test_the_parent_after_the_grace_window_is_reuse_and_revokes_the_session(domain: Domain, logged_in):
    child = await domain.refresh(logged_in)
    domain.clock.advance(GRACE + 1)
    with pytest.raises(RefreshTokenReused):
        await domain.refresh(logged_in)
    session = await domain.store.get_session(logged_in.session_id)
    assert session.revoked_reason == "reuse_detected"
    with pytest.raises(SessionRevoked):
        await domain.refresh(child)
    with pytest.raises(SessionRevoked):
        await domain.caller(child)


async def test_a_grandparent_is_reuse_even_inside_the_window(domain: Domain, logged_in):
    child = await domain.refresh(logged_in)
    await domain.refresh(child)
    with pytest.raises(RefreshTokenReused):
        await domain.refresh(logged_in)
    with pytest.raises(SessionRevoked):
        await domain.caller(logged_in)


async def test_a_zero_grace_window_makes_any_replay_reuse(make_domain: MakeDomain):
    domain = make_domain(token_policy=replace(TOKEN_POLICY, refresh_grace=timedelta(0)))
    await domain.register()
    tokens = await domain.login()
    await domain.refresh(tokens)
    with pytest.raises(RefreshTokenReused):
        await domain.refresh(tokens)


async def test_fifty_concurrent_refreshes_rotate_once_and_all_get_the_same_child(domain: Domain, logged_in):
    answers = await asyncio.gather(*(domain.refresh(logged_in) for _ in range(50)))
    assert {answer.refresh_token for answer in answers} == {answers[0].refresh_token}
    assert (await domain.store.get_session(logged_in.session_id)).generation == 1


async def test_concurrent_refreshes_past_the_grace_window_rotate_once_and_the_rest_are_reuse(
    make_domain: MakeDomain,
):
    domain = make_domain(token_policy=replace(TOKEN_POLICY, refresh_grace=timedelta(0)))
    await domain.register()
    tokens = await domain.login()
    answers = await asyncio.gather(*(domain.refresh(tokens) for _ in range(50)), return_exceptions=True)
    refused = [answer for answer in answers if isinstance(answer, BaseException)]
    assert len(refused) == 49
    assert {type(error) for error in refused} <= {RefreshTokenReused, SessionRevoked}
    assert any(isinstance(error, RefreshTokenReused) for error in refused)
    assert (await domain.store.get_session(tokens.session_id)).revoked_reason == "reuse_detected"


async def test_each_refresh_slides_the_session_expiry_forward(domain: Domain, logged_in):
    tokens = logged_in
    for _ in range(3):  # 60 days in all, past the first expiry
        domain.clock.advance(20 * DAY)
        tokens = await domain.refresh(tokens)
        assert tokens.refresh_expires_in == 30 * DAY
    session = await domain.store.get_session(tokens.session_id)
    assert session.expires_at == domain.clock() + TOKEN_POLICY.refresh_ttl
    assert session.last_used_at == session.refreshed_at == domain.clock()


async def test_a_session_not_refreshed_within_its_lifetime_is_token_expired(domain: Domain, logged_in):
    domain.clock.advance(30 * DAY)
    with pytest.raises(TokenExpired):
        await domain.refresh(logged_in)


async def test_a_grace_replay_keeps_the_childs_expiry(domain: Domain, logged_in):
    child = await domain.refresh(logged_in)
    domain.clock.advance(GRACE)
    replayed = await domain.refresh(logged_in)
    assert replayed.refresh_expires_in == child.refresh_expires_in - int(GRACE)


async def test_an_access_token_is_not_a_refresh_token(domain: Domain, logged_in):
    with pytest.raises(TokenInvalid):
        await domain.auth.refresh(logged_in.access_token, HERE)


async def test_a_refresh_token_minted_under_another_secret_is_invalid(make_domain: MakeDomain):
    domain = make_domain()
    await domain.register()
    tokens = await domain.login()
    other = make_domain(like=domain, refresh_secret=b"another secret of thirty-two bytes!")
    with pytest.raises(TokenInvalid):
        await other.refresh(tokens)
    assert (await domain.store.get_session(tokens.session_id)).generation == 0


async def test_a_refresh_token_with_a_forged_mac_is_invalid_and_touches_nothing(domain: Domain, logged_in):
    prefix, session_id, generation, mac = logged_in.refresh_token.split("_")
    forged = RefreshTokenMac(b"x" * 32).mint(session_id, int(generation) + 1)
    flipped = "_".join((prefix, session_id, generation, mac[:-1] + ("0" if mac[-1] != "0" else "1")))
    for token in (forged, flipped):
        with pytest.raises(TokenInvalid):
            await domain.auth.refresh(token, HERE)
    assert (await domain.store.get_session(logged_in.session_id)).generation == 0


async def test_a_token_naming_a_session_that_does_not_exist_is_invalid(domain: Domain, logged_in):
    token = RefreshTokenMac(domain.refresh_secret).mint("00000000-0000-4000-8000-000000000000", 0)
    with pytest.raises(TokenInvalid):
        await domain.auth.refresh(token, HERE)


async def test_a_future_generation_of_a_real_session_is_invalid_not_reuse(domain: Domain, logged_in):
    """A token for a generation the session never reached cannot have been issued: not a replay."""
    token = RefreshTokenMac(domain.refresh_secret).mint(logged_in.session_id, 5)
    with pytest.raises(TokenInvalid):
        await domain.auth.refresh(token, HERE)
    assert (await domain.store.get_session(logged_in.session_id)).revoked_at is None


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ("", TokenInvalid),
        ("rt1_garbage", TokenInvalid),
        ("not a token", TokenInvalid),
        ("x" * 5000, TokenTooLong),
    ],
)
async def test_malformed_refresh_tokens_are_refused(domain: Domain, token, error):
    with pytest.raises(error):
        await domain.auth.refresh(token, HERE)
