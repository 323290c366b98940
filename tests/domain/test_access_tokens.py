"""Access-token checks: RFC 9068 `typ`, signature, issuer, audience, expiry, and a live session."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from authsvc.domain.audit import ClientInfo
from authsvc.domain.errors import SessionRevoked, TokenExpired, TokenInvalid, TokenTooLong
from authsvc.domain.jws import sign_compact
from authsvc.domain.service import IssuedTokens
from tests.domain.conftest import EMAIL, HERE, TOKEN_POLICY, Domain, MakeDomain, new_signing_key

ACCESS_TTL = TOKEN_POLICY.access_ttl.total_seconds()
LOCAL = ClientInfo(ip_address="127.0.0.1")  # Introspect answers loopback callers when no secret is set


def _part(segment: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def resigned(domain: Domain, token: str, header: dict[str, Any] | None = None, **claims: Any) -> str:
    """`token` with some header members or claims changed, signed again with the domain's own key: only
    the changed property is wrong. A member given as None is removed."""
    header_b64, claims_b64, _ = token.split(".")
    new_header = {**_part(header_b64), **(header or {})}
    new_claims = {**_part(claims_b64), **claims}
    return sign_compact(
        {k: v for k, v in new_header.items() if v is not None},
        {k: v for k, v in new_claims.items() if v is not None},
        domain.key.private_key,
    )


@pytest.fixture
async def tokens(domain: Domain) -> IssuedTokens:
    await domain.register()
    return await domain.login()


async def test_a_live_access_token_names_its_caller(domain: Domain, tokens: IssuedTokens):
    caller = await domain.caller(tokens)
    user = await domain.store.get_user_by_email(EMAIL)
    assert (caller.user_id, caller.session_id, caller.email, caller.role) == (
        user.id,
        tokens.session_id,
        EMAIL,
        "user",
    )
    assert _part(tokens.access_token.split(".")[0]) == {
        "alg": "EdDSA",
        "typ": "at+jwt",
        "kid": domain.key.kid,
    }


async def test_an_access_token_expires_after_its_lifetime(domain: Domain, tokens: IssuedTokens):
    domain.clock.advance(ACCESS_TTL - 1)
    await domain.caller(tokens)
    domain.clock.advance(1)
    with pytest.raises(TokenExpired):
        await domain.caller(tokens)


@pytest.mark.parametrize(
    "revoke",
    [
        pytest.param(
            lambda domain, tokens, caller: domain.auth.logout(tokens.refresh_token, HERE), id="logout"
        ),
        pytest.param(lambda domain, tokens, caller: domain.auth.logout_all(caller, HERE), id="logout all"),
        pytest.param(
            lambda domain, tokens, caller: domain.sessions.revoke_session(caller, tokens.session_id, HERE),
            id="revoke session",
        ),
    ],
)
async def test_the_access_token_of_a_revoked_session_is_refused_at_once(domain: Domain, tokens, revoke):
    await revoke(domain, tokens, await domain.caller(tokens))
    with pytest.raises(SessionRevoked):
        await domain.caller(tokens)
    assert await domain.sessions.introspect(tokens.access_token, None, LOCAL) is None


async def test_the_access_token_of_an_expired_session_is_refused(make_domain: MakeDomain):
    """A session's end is checked on the row, even while the access token itself is still in date."""
    domain = make_domain(token_policy=replace(TOKEN_POLICY, refresh_ttl=timedelta(minutes=10)))
    await domain.register()
    tokens = await domain.login()
    domain.clock.advance(10 * 60)
    with pytest.raises(TokenExpired):
        await domain.caller(tokens)


async def test_a_refresh_token_is_not_a_bearer(domain: Domain, tokens: IssuedTokens):
    with pytest.raises(TokenInvalid):
        await domain.sessions.authenticate(tokens.refresh_token)


@pytest.mark.parametrize(
    ("header", "claims"),
    [
        pytest.param({"typ": "JWT"}, {}, id="typ JWT"),
        pytest.param({"typ": None}, {}, id="no typ"),
        pytest.param({"typ": "application/at+jwt"}, {"iss": "someone-else"}, id="another issuer"),
        pytest.param({}, {"aud": "another-service"}, id="another audience"),
        pytest.param({}, {"email": None}, id="no email"),
        pytest.param({}, {"sid": None}, id="no session id"),
        pytest.param({}, {"exp": "tomorrow"}, id="exp not a number"),
        pytest.param({"kid": "unknown"}, {}, id="unknown kid"),
        pytest.param({"alg": "none"}, {}, id="alg none"),
    ],
)
async def test_a_token_wrong_in_one_property_is_invalid(domain: Domain, tokens: IssuedTokens, header, claims):
    with pytest.raises(TokenInvalid):
        await domain.sessions.authenticate(resigned(domain, tokens.access_token, header, **claims))


async def test_the_typ_is_a_media_type_compared_without_case_and_with_the_application_prefix(
    domain: Domain, tokens: IssuedTokens
):
    """RFC 7515 section 4.1.9: `application/at+jwt` and `AT+JWT` name the same type as `at+jwt`."""
    for typ in ("application/at+jwt", "AT+JWT"):
        await domain.sessions.authenticate(resigned(domain, tokens.access_token, {"typ": typ}))


async def test_a_token_naming_another_users_session_is_invalid(domain: Domain, tokens: IssuedTokens):
    await domain.register("bob@example.com")
    bob = await domain.login("bob@example.com")
    bob_user_id = (await domain.caller(bob)).user_id
    with pytest.raises(TokenInvalid):
        await domain.sessions.authenticate(resigned(domain, tokens.access_token, sub=bob_user_id))


async def test_a_token_signed_by_another_key_is_invalid(make_domain: MakeDomain):
    domain = make_domain()
    await domain.register()
    tokens = await domain.login()
    elsewhere = make_domain(like=domain, key=new_signing_key())
    with pytest.raises(TokenInvalid):
        await elsewhere.caller(tokens)


async def test_a_token_issued_in_the_future_is_invalid(domain: Domain, tokens: IssuedTokens):
    claims = _part(tokens.access_token.split(".")[1])
    later = claims["iat"] + 3600
    with pytest.raises(TokenInvalid):
        await domain.sessions.authenticate(resigned(domain, tokens.access_token, iat=later, exp=later + 900))


@pytest.mark.parametrize(
    ("token", "error"), [("", TokenInvalid), ("junk", TokenInvalid), ("a" * 5000, TokenTooLong)]
)
async def test_malformed_bearers_are_refused(domain: Domain, token, error):
    with pytest.raises(error):
        await domain.sessions.authenticate(token)


async def test_introspection_answers_the_caller_of_an_active_token_and_none_for_anything_else(
    domain: Domain, tokens: IssuedTokens
):
    active = await domain.sessions.introspect(tokens.access_token, None, LOCAL)
    assert active == await domain.caller(tokens)
    for inactive in (tokens.refresh_token, "junk", resigned(domain, tokens.access_token, {"typ": "JWT"})):
        assert await domain.sessions.introspect(inactive, None, LOCAL) is None
