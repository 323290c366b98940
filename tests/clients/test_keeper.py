"""The token keeper: refreshes before the access token expires, exactly one refresh for many concurrent
callers, and gives up cleanly (SessionEnded, pair forgotten) once the session is revoked."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from authsvc_client import (
    NO_RETRIES,
    AsyncAuthClient,
    AsyncTokenKeeper,
    AuthClient,
    SessionEnded,
    TokenKeeper,
    TokenPair,
    Unavailable,
)

from tests.clients.conftest import PASSWORD, CallCounter, SyncCallCounter
from tests.ports import free_port


def held(keeper: AsyncTokenKeeper | TokenKeeper) -> TokenPair:
    assert keeper.pair is not None, "the keeper has given up"
    return keeper.pair


class Ticker:
    """The keeper's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def counted(auth_server, register):
    await register()
    counter = CallCounter()
    client = AsyncAuthClient(auth_server.target, interceptors=[counter])
    yield client, counter
    await client.close()


async def test_the_access_token_is_reused_until_the_margin_before_expiry(counted):
    client, counter = counted
    ticker = Ticker()
    keeper = await AsyncTokenKeeper.login(client, "ada@example.com", PASSWORD, margin=60, clock=ticker)
    first = await keeper.access_token()
    ticker.now += 900 - 60 - 1
    assert await keeper.access_token() == first
    assert counter.calls["Refresh"] == 0
    ticker.now += 1
    renewed = await keeper.access_token()
    assert renewed != first and counter.calls["Refresh"] == 1
    assert keeper.pair is not None and held(keeper).access_token == renewed


async def test_concurrent_callers_share_exactly_one_refresh(counted, auth_server):
    client, counter = counted
    ticker = Ticker()
    keeper = await AsyncTokenKeeper.login(client, "ada@example.com", PASSWORD, clock=ticker)
    old_refresh = held(keeper).refresh_token
    ticker.now += 900
    auth_server.clock.advance(1)  # the new token differs from the old one
    tokens = await asyncio.gather(*(keeper.access_token() for _ in range(20)))
    assert counter.calls["Refresh"] == 1
    assert len(set(tokens)) == 1 and tokens[0] == held(keeper).access_token
    # The session was rotated once, so it is still live: the old token is now the grace-window parent.
    assert held(keeper).refresh_token != old_refresh
    assert [s.session_id for s in await client.list_sessions(tokens[0])] == [held(keeper).session_id]


async def test_concurrent_threads_share_exactly_one_refresh(auth_server, register):
    await register()
    counter = SyncCallCounter()
    client = AuthClient(auth_server.target, interceptors=[counter])
    ticker = Ticker()

    def scenario() -> list[str]:
        keeper = TokenKeeper.login(client, "ada@example.com", PASSWORD, clock=ticker)
        ticker.now += 900
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(lambda _: keeper.access_token(), range(16)))

    try:
        tokens = await asyncio.to_thread(scenario)
    finally:
        client.close()
    assert counter.calls["Refresh"] == 1 and len(set(tokens)) == 1


@pytest.mark.parametrize("how", ["revoked elsewhere", "logout all"])
async def test_a_revoked_session_ends_the_keeper_and_clears_the_pair(counted, how):
    client, counter = counted
    ticker = Ticker()
    keeper = await AsyncTokenKeeper.login(client, "ada@example.com", PASSWORD, clock=ticker)
    other = await client.login("ada@example.com", PASSWORD)
    if how == "revoked elsewhere":
        await client.revoke_session(other.access_token, held(keeper).session_id)
    else:
        await client.logout_all(other.access_token)
    ticker.now += 900
    callers = await asyncio.gather(*(keeper.access_token() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(error, SessionEnded) for error in callers)
    assert {getattr(error, "reason", None) for error in callers} == {"SESSION_REVOKED"}
    assert keeper.pair is None and counter.calls["Refresh"] == 1
    with pytest.raises(SessionEnded):
        await keeper.refresh()
    assert counter.calls["Refresh"] == 1  # no more calls once it has given up


async def test_a_revoked_session_ends_the_blocking_keeper_too(auth_server, register):
    await register()
    client = AuthClient(auth_server.target)
    ticker = Ticker()

    def scenario() -> tuple[str | None, object]:
        keeper = TokenKeeper.login(client, "ada@example.com", PASSWORD, clock=ticker)
        client.logout(held(keeper).refresh_token)
        try:
            keeper.refresh()
        except SessionEnded as ended:
            return ended.reason, keeper.pair
        return None, keeper.pair

    try:
        assert await asyncio.to_thread(scenario) == ("SESSION_REVOKED", None)
    finally:
        client.close()


async def test_an_outage_during_refresh_keeps_the_pair_for_a_later_try(counted, auth_server):
    client, _ = counted
    ticker = Ticker()
    keeper = await AsyncTokenKeeper.login(client, "ada@example.com", PASSWORD, clock=ticker)
    pair = held(keeper)
    ticker.now += 900
    down = AsyncAuthClient(f"127.0.0.1:{free_port()}", retry=NO_RETRIES)
    keeper._client = down  # the same keeper, now unable to reach the service
    try:
        with pytest.raises(Unavailable):
            await keeper.access_token()
    finally:
        await down.close()
    assert keeper.pair == pair
    keeper._client = client
    assert await keeper.access_token() != pair.access_token


async def test_logout_ends_the_session_at_the_service_and_in_the_keeper(counted):
    client, _ = counted
    keeper = await AsyncTokenKeeper.login(client, "ada@example.com", PASSWORD)
    token = await keeper.access_token()
    await keeper.logout()
    assert keeper.pair is None
    assert not (await client.introspect(token)).active
    with pytest.raises(SessionEnded) as ended:
        await keeper.access_token()
    assert ended.value.reason is None
    await keeper.logout()  # a no-op once ended
