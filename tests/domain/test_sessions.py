"""A user's devices: the list of live sessions, and revoking one of one's own."""

from __future__ import annotations

import pytest

from authsvc.domain.audit import ClientInfo
from authsvc.domain.errors import InvalidRequest, SessionNotFound, SessionRevoked
from tests.domain.conftest import HERE, TOKEN_POLICY, Domain

MINUTE = 60


async def test_the_list_shows_live_sessions_newest_first_with_the_callers_marked_current(domain: Domain):
    await domain.register()
    opened = []
    for device in ("phone", "laptop", "tablet"):
        opened.append(await domain.login(client=ClientInfo(user_agent=device, ip_address="198.51.100.4")))
        domain.clock.advance(MINUTE)
    listed = await domain.sessions.list_sessions(await domain.caller(opened[1]))
    assert [(s.session_id, s.user_agent, s.current) for s in listed] == [
        (opened[2].session_id, "tablet", False),
        (opened[1].session_id, "laptop", True),
        (opened[0].session_id, "phone", False),
    ]
    assert {s.ip_address for s in listed} == {"198.51.100.4"}


async def test_the_list_leaves_out_revoked_and_expired_sessions_and_other_users(domain: Domain):
    await domain.register()
    await domain.register("bob@example.com")
    expiring = await domain.login()
    domain.clock.advance(20 * 86_400)
    logged_out, kept = await domain.login(), await domain.login()
    await domain.login("bob@example.com")
    await domain.auth.logout(logged_out.refresh_token, HERE)
    domain.clock.advance(10 * 86_400)  # `expiring` reaches its 30 days
    listed = await domain.sessions.list_sessions(await domain.caller(await domain.refresh(kept)))
    assert [s.session_id for s in listed] == [kept.session_id]
    assert expiring.session_id not in {s.session_id for s in listed}


async def test_a_refresh_moves_last_used_and_expiry_forward(domain: Domain):
    await domain.register()
    tokens = await domain.login()
    created = domain.clock()
    domain.clock.advance(5 * MINUTE)
    renewed = await domain.refresh(tokens)
    (listed,) = await domain.sessions.list_sessions(await domain.caller(renewed))
    now = domain.clock()
    assert (listed.created_at, listed.last_used_at, listed.expires_at) == (
        created,
        now,
        now + TOKEN_POLICY.refresh_ttl,
    )


async def test_revoking_a_device_ends_its_refresh_and_access_tokens_at_once(domain: Domain):
    await domain.register()
    phone, laptop = await domain.login(), await domain.login()
    laptop_caller = await domain.caller(laptop)
    await domain.sessions.revoke_session(laptop_caller, phone.session_id, HERE)
    with pytest.raises(SessionRevoked):
        await domain.caller(phone)
    with pytest.raises(SessionRevoked):
        await domain.refresh(phone)
    assert (await domain.store.get_session(phone.session_id)).revoked_reason == "revoked_by_user"
    await domain.refresh(laptop)


async def test_revoking_ones_own_current_session_ends_it(domain: Domain):
    await domain.register()
    tokens = await domain.login()
    caller = await domain.caller(tokens)
    await domain.sessions.revoke_session(caller, tokens.session_id, HERE)
    with pytest.raises(SessionRevoked):
        await domain.caller(tokens)


async def test_another_users_a_missing_and_an_already_revoked_session_are_not_found_alike(domain: Domain):
    await domain.register()
    await domain.register("bob@example.com")
    ada = await domain.caller(await domain.login())
    bobs = await domain.login("bob@example.com")
    gone = await domain.login()
    await domain.sessions.revoke_session(ada, gone.session_id, HERE)
    for session_id in (bobs.session_id, "00000000-0000-4000-8000-000000000000", gone.session_id, "x" * 65):
        with pytest.raises(SessionNotFound):
            await domain.sessions.revoke_session(ada, session_id, HERE)
    await domain.refresh(bobs)  # untouched


async def test_revoking_without_a_session_id_is_invalid_request(domain: Domain):
    await domain.register()
    caller = await domain.caller(await domain.login())
    with pytest.raises(InvalidRequest):
        await domain.sessions.revoke_session(caller, "", HERE)
