"""Token confusion: every kind of token the service deals in, presented where another kind is expected.

One table: each kind (an access token; an opaque refresh token; a legacy JWT refresh token signed with
the server's real key; a random string as an introspection secret looks; the claims of an access token
signed with the real key under typ JWT) at each place (bearer of ListSessions and LogoutAll, refresh_token
of Refresh and Logout, over gRPC and over REST through the gateway; Introspect over both; the client
library's two guards). Only the right kind at the right place gets in; everything else is UNAUTHENTICATED
TOKEN_INVALID (gRPC), 401 with the error body and reason TOKEN_INVALID (REST), `{"active": false}`
(Introspect), or GuardError TOKEN_INVALID (guards). After each refusal the right kind, at the same place,
still gets in: the refusal was about the kind of token, and did the session no harm.

The legacy refresh JWT is correctly signed but not its session's current token (the store holds the hash
of the opaque one), so it gets in nowhere in the table; a separate test shows the server does read it as a
refresh token, and only as one. Last, a third-party resource server (PyJWT on the JWKS the gateway
publishes, RFC 9068 section 4) tells an access token from both kinds of refresh token.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from authsvc_proto.v1 import auth_pb2

from tests.conftest import ServerHandle
from tests.security.token_places import (
    ACCEPTED,
    ACCESS,
    PLACES,
    REFRESH,
    Bench,
    Place,
    grpc_outcome,
    legacy_refresh_jwt,
    open_bench,
    resigned,
)


@dataclass(frozen=True)
class Tokens:
    """One of each kind, all for the same user and session."""

    access: str
    refresh: str
    session_id: str
    legacy_refresh: str
    random: str
    access_typ_jwt: str


KINDS: dict[str, Callable[[Tokens], str]] = {
    "an access token": lambda tokens: tokens.access,
    "an opaque refresh token": lambda tokens: tokens.refresh,
    "a legacy refresh JWT signed with the real key": lambda tokens: tokens.legacy_refresh,
    "a random string": lambda tokens: tokens.random,
    "an access token re-signed with the real key as typ JWT": lambda tokens: tokens.access_typ_jwt,
}
RIGHT_KIND = {ACCESS: "an access token", REFRESH: "an opaque refresh token"}


async def issue(server: ServerHandle, register, login, email: str) -> Tokens:
    """A new user, logged in once: one token of each kind for that session."""
    await register(email)
    pair = await login(email)
    return Tokens(
        access=pair.access_token,
        refresh=pair.refresh_token,
        session_id=pair.session_id,
        # Generation 0, the session's own: read as its refresh token, but not the one the store holds.
        legacy_refresh=legacy_refresh_jwt(server, pair.access_token, 0),
        random=secrets.token_urlsafe(32),
        access_typ_jwt=resigned(server, pair.access_token, "JWT"),
    )


@pytest.fixture
async def tokens(auth_server: ServerHandle, register, login) -> Tokens:
    return await issue(auth_server, register, login, "ada@example.com")


@pytest.fixture
async def bench(auth_server: ServerHandle) -> AsyncIterator[Bench]:
    async with open_bench(auth_server) as opened:
        yield opened


@pytest.mark.parametrize("place", [pytest.param(place, id=place.name) for place in PLACES])
async def test_only_the_right_kind_of_token_gets_in(
    auth_server: ServerHandle, bench: Bench, register, login, place: Place
):
    """One row of the table per place: every kind, each on a user and session of its own (so that what
    one case does, a LogoutAll say, cannot change the next), compared with what the place must answer.
    Every wrong case is reported, by its description."""
    right = RIGHT_KIND[place.expects]
    wrong: list[str] = []
    for number, (kind, token_of) in enumerate(KINDS.items()):
        tokens = await issue(auth_server, register, login, f"user{number}@example.com")
        expected = ACCEPTED if kind == right else place.refusal
        outcome = await place.present(bench, token_of(tokens))
        if outcome != expected:
            wrong.append(f"{kind} {place}: {outcome!r}, expected {expected!r}")
        elif kind != right:
            # The refusal was about the kind: the right kind, at the same place, still gets in.
            after = await place.present(bench, KINDS[right](tokens))
            if after != ACCEPTED:
                wrong.append(f"{right} {place}, after {kind}: {after!r}, expected {ACCEPTED!r}")
    assert not wrong, "\n".join(wrong)


def test_the_table_has_one_right_kind_per_place_and_the_tokens_differ_in_kind():
    # Guard the table itself: every place expects one of the two kinds it names.
    assert {place.expects for place in PLACES} == {ACCESS, REFRESH}
    assert len({place.name for place in PLACES}) == len(PLACES)
    assert set(RIGHT_KIND.values()) <= set(KINDS)


async def test_the_legacy_and_re_signed_tokens_are_what_they_claim_to_be(tokens: Tokens):
    # The forged kinds are well-formed and signed by the real key: only their kind is wrong.
    assert jwt.get_unverified_header(tokens.legacy_refresh)["typ"] == "JWT"
    legacy = jwt.decode(tokens.legacy_refresh, options={"verify_signature": False})
    assert (legacy["type"], legacy["gen"], legacy["sid"]) == ("refresh", 0, tokens.session_id)
    assert jwt.get_unverified_header(tokens.access_typ_jwt)["typ"] == "JWT"
    assert jwt.get_unverified_header(tokens.access)["typ"] == "at+jwt"
    original = jwt.decode(tokens.access, options={"verify_signature": False})
    assert jwt.decode(tokens.access_typ_jwt, options={"verify_signature": False}) == original
    with pytest.raises(jwt.DecodeError):
        jwt.get_unverified_header(tokens.refresh)


@pytest.mark.parametrize("method", ["Refresh", "Logout"])
async def test_the_server_reads_a_legacy_refresh_jwt_as_a_refresh_token(
    auth_server: ServerHandle, bench: Bench, tokens: Tokens, method: str
):
    """Refused everywhere in the table, yet read on Refresh and Logout: once the session has moved on to
    generation 1, the legacy JWT of generation 0 is a spent refresh token of that very session, so
    presenting it is a reuse, which ends the session. At the access-token places it is not read at all."""
    access_places = [place for place in PLACES if place.expects == ACCESS]
    refreshed = await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=tokens.refresh))
    for place in access_places:
        assert await place.present(bench, tokens.legacy_refresh) == place.refusal, place
    call: Any = getattr(auth_server.stub, method)
    request_class: Any = getattr(auth_pb2, f"{method}Request")
    refused = await grpc_outcome(call(request_class(refresh_token=tokens.legacy_refresh)))
    assert refused == "UNAUTHENTICATED REFRESH_TOKEN_REUSED"
    current = auth_pb2.RefreshRequest(refresh_token=refreshed.refresh_token)
    assert await grpc_outcome(auth_server.stub.Refresh(current)) == "UNAUTHENTICATED SESSION_REVOKED"


ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")
RFC_9068_CLAIMS = ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"]  # section 2.2


class NotAnAccessToken(jwt.InvalidTokenError):
    """The header's typ is not at+jwt: RFC 9068 section 4 says to reject it."""


class ResourceServer:
    """A third party that trusts authsvc's access tokens, configured as PyJWT's documentation suggests:
    keys from the published JWKS by kid, EdDSA only, this issuer and audience, RFC 9068's claims and
    header type. Blocking (PyJWKClient fetches with urllib), so tests call it in a thread."""

    def __init__(self, jwks_url: str) -> None:
        self.jwks = jwt.PyJWKClient(jwks_url)

    def verify(self, token: str) -> dict[str, Any]:
        typ = jwt.get_unverified_header(token).get("typ")  # DecodeError for anything not a JWS
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise NotAnAccessToken(f"typ {typ!r} is not at+jwt")
        claims: dict[str, Any] = jwt.decode(
            token,
            self.jwks.get_signing_key_from_jwt(token),
            algorithms=["EdDSA"],
            issuer="authsvc",
            audience="authsvc",
            options={"require": RFC_9068_CLAIMS},
        )
        return claims

    def verify_without_typ(self, token: str) -> dict[str, Any]:
        """What a resource server forgetting RFC 9068's typ check (and its claims) would accept."""
        claims: dict[str, Any] = jwt.decode(
            token,
            self.jwks.get_signing_key_from_jwt(token),
            algorithms=["EdDSA"],
            issuer="authsvc",
            audience="authsvc",
            options={"require": ["iss", "aud", "sub", "exp"]},
        )
        return claims


async def test_a_third_party_pyjwt_verifier_tells_access_tokens_from_refresh_tokens(
    bench: Bench, tokens: Tokens
):
    jwks_url = await bench.gateway_url() + "/.well-known/jwks.json"
    verifier = ResourceServer(jwks_url)

    claims = await asyncio.to_thread(verifier.verify, tokens.access)
    assert (claims["sid"], claims["client_id"]) == (tokens.session_id, "authsvc")

    with pytest.raises(jwt.DecodeError):  # opaque: not even a JWS
        await asyncio.to_thread(verifier.verify, tokens.refresh)
    with pytest.raises(NotAnAccessToken):
        await asyncio.to_thread(verifier.verify, tokens.legacy_refresh)
    with pytest.raises(NotAnAccessToken):
        await asyncio.to_thread(verifier.verify, tokens.access_typ_jwt)

    # Why the typ check matters: the legacy refresh JWT is signed by a published key, for this issuer
    # and audience, so PyJWT alone takes it for a valid token. Opaque refresh tokens close that hole.
    legacy = await asyncio.to_thread(verifier.verify_without_typ, tokens.legacy_refresh)
    assert legacy["type"] == "refresh"
    with pytest.raises(jwt.DecodeError):
        await asyncio.to_thread(verifier.verify_without_typ, tokens.refresh)
