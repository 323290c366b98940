"""An unreachable store or attempt store leaves the domain as ServiceUnavailable, never as a wrong answer:
not "invalid credentials", not "inactive", and never a login let through unthrottled."""

from __future__ import annotations

import pytest

from authsvc.domain.audit import ClientInfo
from authsvc.domain.errors import ServiceUnavailable
from authsvc.domain.service import IssuedTokens
from tests.conftest import PASSWORD
from tests.domain.conftest import HERE, Domain

LOCAL = ClientInfo(ip_address="127.0.0.1")  # Introspect answers loopback callers when no secret is set


@pytest.fixture
async def tokens(domain: Domain) -> IssuedTokens:
    await domain.register()
    return await domain.login()


async def test_with_the_store_down_every_call_is_service_unavailable(domain: Domain, tokens: IssuedTokens):
    caller = await domain.caller(tokens)
    await domain.store.close()
    calls = [
        domain.register("bob@example.com"),
        domain.login(),
        domain.refresh(tokens),
        domain.auth.logout(tokens.refresh_token, HERE),
        domain.auth.logout_all(caller, HERE),
        domain.caller(tokens),
        domain.sessions.list_sessions(caller),
        domain.sessions.revoke_session(caller, tokens.session_id, HERE),
        domain.sessions.introspect(tokens.access_token, None, LOCAL),
    ]
    for call in calls:
        with pytest.raises(ServiceUnavailable):
            await call


async def test_with_the_counters_down_logins_and_registrations_fail_closed_before_bcrypt(domain: Domain):
    await domain.register()
    await domain.attempts.close()
    checks, hashed = domain.hasher.checks, len(domain.hasher.hashed)
    with pytest.raises(ServiceUnavailable):
        await domain.login("ada@example.com", PASSWORD, HERE)
    with pytest.raises(ServiceUnavailable):
        await domain.register("bob@example.com")
    assert (domain.hasher.checks, len(domain.hasher.hashed)) == (checks, hashed)
