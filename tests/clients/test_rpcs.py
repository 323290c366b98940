"""Every AuthService RPC through both clients, against the real server: plain values in and out, and
failures as the exception for their kind, carrying the service's reason word."""

from __future__ import annotations

from datetime import UTC

import jwt
import pytest
from authsvc_client import (
    Account,
    AlreadyExists,
    AsyncAuthClient,
    AuthClient,
    Introspection,
    InvalidArgument,
    InvalidCredentials,
    InvalidToken,
    NotFound,
    RetryPolicy,
    Unauthenticated,
    Unavailable,
)

from authsvc.store import StoreUnavailable
from tests.clients.conftest import PASSWORD, ThreadedClient

SECRET = "internal-introspection-secret-0123456789"  # at least 32 bytes


async def login(client, email: str = "ada@example.com"):
    await client.register(email, PASSWORD)
    return await client.login(email, PASSWORD)


async def test_register_answers_the_account_with_the_normalised_email(client):
    account = await client.register("  Ada@Example.COM ", PASSWORD)
    assert isinstance(account, Account)
    assert account.email == "ada@example.com" and account.user_id


@pytest.mark.parametrize(
    ("email", "password", "error", "reason"),
    [
        ("not-an-email", PASSWORD, InvalidArgument, "INVALID_EMAIL"),
        ("ada@example.com", "short", InvalidArgument, "WEAK_PASSWORD"),
        ("ada@example.com", "x" * 73, InvalidArgument, "PASSWORD_TOO_LONG"),
    ],
    ids=["bad email", "weak password", "password over 72 bytes"],
)
async def test_register_refuses_bad_input_as_invalid_argument(client, email, password, error, reason):
    with pytest.raises(error) as caught:
        await client.register(email, password)
    assert caught.value.reason == reason


async def test_registering_a_taken_email_is_already_exists(client):
    await client.register("ada@example.com", PASSWORD)
    with pytest.raises(AlreadyExists) as caught:
        await client.register("ADA@example.com", PASSWORD)
    assert caught.value.reason == "EMAIL_TAKEN"


async def test_login_answers_a_bearer_pair_for_a_new_session(client):
    pair = await login(client)
    assert pair.token_type == "Bearer"
    assert (pair.expires_in, pair.refresh_expires_in) == (900, 2_592_000)
    assert jwt.decode(pair.access_token, options={"verify_signature": False})["sid"] == pair.session_id
    assert pair.access_token not in repr(pair) and pair.refresh_token not in repr(pair)


@pytest.mark.parametrize(
    "email", ["ada@example.com", "nobody@example.com"], ids=["wrong password", "no user"]
)
async def test_a_wrong_password_or_unknown_user_is_invalid_credentials(client, email):
    await client.register("ada@example.com", PASSWORD)
    with pytest.raises(InvalidCredentials) as caught:
        await client.login(email, "not the password")
    assert caught.value.reason == "INVALID_CREDENTIALS"


async def test_refresh_rotates_within_the_same_session(client):
    pair = await login(client)
    renewed = await client.refresh(pair.refresh_token)
    assert renewed.session_id == pair.session_id
    assert renewed.refresh_token != pair.refresh_token


@pytest.mark.parametrize("server_settings", [{"refresh_grace_seconds": 0}], indirect=True)
async def test_a_reused_refresh_token_is_invalid_token_and_ends_the_session(client):
    pair = await login(client)
    renewed = await client.refresh(pair.refresh_token)
    with pytest.raises(InvalidToken) as reused:
        await client.refresh(pair.refresh_token)
    with pytest.raises(InvalidToken) as revoked:
        await client.refresh(renewed.refresh_token)
    assert (reused.value.reason, revoked.value.reason) == ("REFRESH_TOKEN_REUSED", "SESSION_REVOKED")


async def test_a_junk_refresh_token_is_invalid_token(client):
    with pytest.raises(InvalidToken) as caught:
        await client.refresh("not-a-token")
    assert caught.value.reason == "TOKEN_INVALID"


async def test_an_access_token_is_not_a_refresh_token(client):
    pair = await login(client)
    with pytest.raises(InvalidToken) as caught:
        await client.refresh(pair.access_token)
    assert caught.value.reason == "TOKEN_INVALID"


async def test_logout_ends_that_session_only(client):
    first = await login(client)
    second = await client.login("ada@example.com", PASSWORD)
    assert await client.logout(first.refresh_token) is None
    with pytest.raises(InvalidToken) as caught:
        await client.refresh(first.refresh_token)
    assert caught.value.reason == "SESSION_REVOKED"
    await client.refresh(second.refresh_token)


async def test_logout_all_counts_the_sessions_it_ended(client):
    pair = await login(client)
    await client.login("ada@example.com", PASSWORD)
    assert await client.logout_all(pair.access_token) == 2
    with pytest.raises(InvalidToken) as caught:
        await client.list_sessions(pair.access_token)
    assert caught.value.reason == "SESSION_REVOKED"


async def test_a_call_needing_a_bearer_with_a_junk_one_is_unauthenticated(client):
    with pytest.raises(Unauthenticated) as caught:
        await client.logout_all("junk")
    assert caught.value.reason == "TOKEN_INVALID"


async def test_list_sessions_answers_the_live_sessions_newest_first(client, auth_server):
    first = await login(client)
    auth_server.clock.advance(1)
    second = await client.login("ada@example.com", PASSWORD)
    sessions = await client.list_sessions(second.access_token)
    assert [s.session_id for s in sessions] == [second.session_id, first.session_id]
    assert [s.current for s in sessions] == [True, False]
    newest = sessions[0]
    assert newest.created_at.tzinfo == UTC and newest.expires_at > newest.created_at
    assert newest.ip_address == "127.0.0.1" and newest.user_agent and "grpc-python" in newest.user_agent


async def test_revoke_session_ends_one_session_and_then_it_is_not_found(client):
    keep = await login(client)
    other = await client.login("ada@example.com", PASSWORD)
    assert await client.revoke_session(keep.access_token, other.session_id) is None
    with pytest.raises(NotFound) as caught:
        await client.revoke_session(keep.access_token, other.session_id)
    assert caught.value.reason == "SESSION_NOT_FOUND"
    assert [s.session_id for s in await client.list_sessions(keep.access_token)] == [keep.session_id]


async def test_introspect_answers_the_claims_of_a_live_token_and_inactive_otherwise(client):
    pair = await login(client)
    active = await client.introspect(pair.access_token)
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    assert active == Introspection(
        active=True,
        token_type="Bearer",
        user_id=claims["sub"],
        session_id=pair.session_id,
        expires_at=claims["exp"],
        email="ada@example.com",
        role="user",
        email_verified=False,
    )
    assert await client.introspect(pair.refresh_token) == Introspection(active=False)
    await client.logout(pair.refresh_token)
    assert await client.introspect(pair.access_token) == Introspection(active=False)


@pytest.mark.parametrize("server_settings", [{"introspection_secret": SECRET}], indirect=True)
async def test_introspect_presents_the_secret_when_the_service_wants_one(client):
    pair = await login(client)
    with pytest.raises(Unauthenticated) as caught:
        await client.introspect(pair.access_token)
    assert caught.value.reason == "NOT_AUTHENTICATED"
    assert (await client.introspect(pair.access_token, secret=SECRET)).active


async def test_get_jwks_answers_a_key_set_that_verifies_access_tokens(client):
    pair = await login(client)
    jwks = await client.get_jwks()
    assert [sorted(key) for key in jwks["keys"]] == [["alg", "crv", "kid", "kty", "use", "x"]]
    kid = jwt.get_unverified_header(pair.access_token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks)[kid].key
    claims = jwt.decode(pair.access_token, key, algorithms=["EdDSA"], audience="authsvc", issuer="authsvc")
    assert claims["sid"] == pair.session_id


@pytest.fixture
def store_down_for(auth_server, monkeypatch):
    """Make the real service's store fail its next `times` session reads, as an outage would."""
    store = auth_server.running.store
    reads: list[int] = []

    def _down_for(times: int) -> list[int]:
        real = store.session_standing

        async def session_standing(session_id: str, now):
            reads.append(1)
            if len(reads) <= times:
                raise StoreUnavailable("down")
            return await real(session_id, now)

        monkeypatch.setattr(store, "session_standing", session_standing)
        return reads

    return _down_for


async def test_a_brief_store_outage_is_ridden_out_by_the_channel_retries(client, store_down_for):
    pair = await login(client)
    reads = store_down_for(2)
    assert (await client.introspect(pair.access_token)).active
    assert len(reads) == 3  # two UNAVAILABLE answers, retried by the channel, then the answer


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_longer_store_outage_surfaces_as_unavailable_with_its_reason(
    kind, auth_server, store_down_for
):
    retry = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
    sync = AuthClient(auth_server.target, retry=retry)
    client = AsyncAuthClient(auth_server.target, retry=retry) if kind == "async" else ThreadedClient(sync)
    try:
        pair = await login(client)
        reads = store_down_for(100)
        with pytest.raises(Unavailable) as caught:
            await client.introspect(pair.access_token)
        assert caught.value.reason == "STORE_UNAVAILABLE"
        assert len(reads) == 3  # every attempt the policy allows, then the failure
    finally:
        sync.close()
        if isinstance(client, AsyncAuthClient):
            await client.close()
