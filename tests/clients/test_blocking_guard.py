"""The blocking guard, for threaded code (a thread-pool grpc server, a WSGI app): the same rules as the
asyncio guard, over the blocking AuthClient, with its key fetch shared by concurrent threads."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import jwt
import pytest
from authsvc_client import AuthClient, BlockingBearerGuard, GuardError

from tests.clients.conftest import PASSWORD, SyncCallCounter

SECRET = "internal-introspection-secret-0123456789"  # at least 32 bytes


@pytest.fixture
def counted(auth_server) -> Iterator[tuple[AuthClient, SyncCallCounter]]:
    counter = SyncCallCounter()
    client = AuthClient(auth_server.target, interceptors=[counter], introspection_secret=SECRET)
    yield client, counter
    client.close()


def reason_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(GuardError) as caught:
        call()
    return caught.value.code, caught.value.reason


@pytest.mark.parametrize("server_settings", [{"introspection_secret": SECRET}], indirect=True)
async def test_threads_share_one_key_fetch_and_a_revoked_session_is_refused(counted, register):
    client, counter = counted
    await register()

    def scenario() -> None:
        pair = client.login("ada@example.com", PASSWORD)
        bearer = (("authorization", f"Bearer {pair.access_token}"),)
        offline = BlockingBearerGuard(client)
        checked = BlockingBearerGuard(client, check_revocation=True)
        with ThreadPoolExecutor(max_workers=8) as pool:
            users = list(pool.map(lambda _: offline.verify_bearer(bearer), range(16)))
        assert {user.session_id for user in users} == {pair.session_id}
        assert counter.calls["GetJwks"] == 1
        assert checked.verify_bearer(bearer).email == "ada@example.com"
        client.logout(pair.refresh_token)
        assert reason_of(lambda: checked.verify_bearer(bearer)) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "SESSION_REVOKED",
        )
        assert offline.verify_bearer(bearer).session_id == pair.session_id  # offline cannot see it

    await asyncio.to_thread(scenario)


async def test_expired_wrong_type_and_missing_tokens_are_refused(counted, register):
    client, _ = counted
    await register()

    def scenario() -> None:
        pair = client.login("ada@example.com", PASSWORD)
        exp = jwt.decode(pair.access_token, options={"verify_signature": False})["exp"]
        late = BlockingBearerGuard(client, clock=lambda: exp)
        assert reason_of(lambda: late.verify_token(pair.access_token))[1] == "TOKEN_EXPIRED"
        guard = BlockingBearerGuard(client)
        assert reason_of(lambda: guard.verify_token(pair.refresh_token))[1] == "TOKEN_INVALID"
        assert reason_of(lambda: guard.verify_bearer(()))[1] == "NOT_AUTHENTICATED"

    await asyncio.to_thread(scenario)
