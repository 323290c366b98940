"""Where a token can be presented, and what each place answers, for the token-confusion and spelling tests.

A `Place` presents one token at one door of the system: as the bearer of a gRPC or REST call, as the
`refresh_token` of Refresh or Logout (gRPC or REST), to Introspect (gRPC or REST), or to the client
library's two guards. Its answer is one short string: ACCEPTED, or the exact refusal (status, code and
reason word), so a table of cases compares plain strings and a failure shows what came back.

`Bench` starts what the places need, lazily, over a live server (`tests.conftest.auth_server`): a REST
gateway (exposing the internal Introspect route) and both guards over real clients of the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
import jwt
from authsvc_client import AsyncAuthClient, AuthClient, BearerGuard, BlockingBearerGuard, GuardError
from authsvc_proto.v1 import auth_pb2

from authsvc.clock import to_epoch_seconds
from authsvc.domain.keys import KeyRing
from authsvc.store.key_files import SigningKey, load_or_create_keys
from tests.conftest import ServerHandle
from tests.gateway.conftest import running_gateway
from tests.status import error_info

ACCEPTED = "accepted"
GRPC_REFUSED = "UNAUTHENTICATED TOKEN_INVALID"
REST_REFUSED = "HTTP 401 UNAUTHENTICATED TOKEN_INVALID"
INACTIVE = "inactive"
GUARD_REFUSED = "GuardError UNAUTHENTICATED TOKEN_INVALID"

ACCESS = "access"
REFRESH = "refresh"

REFRESH_TTL_SECONDS = 30 * 86_400


class Bench:
    """A live server and, started on first use, a gateway in front of it and both guards."""

    def __init__(self, server: ServerHandle, stack: AsyncExitStack) -> None:
        self.server = server
        self._stack = stack
        self._gateway_url: str | None = None
        self._http: aiohttp.ClientSession | None = None
        self._guard: BearerGuard | None = None
        self._blocking_guard: BlockingBearerGuard | None = None

    async def gateway_url(self) -> str:
        if self._gateway_url is None:
            gateway = await self._stack.enter_async_context(
                running_gateway(self.server.target, expose_internal=True)
            )
            self._gateway_url = gateway.url
        return self._gateway_url

    async def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
            self._http = await self._stack.enter_async_context(session)
        return self._http

    async def rest(
        self, method: str, path: str, *, bearer: str | None = None, body: dict[str, Any] | None = None
    ) -> tuple[int, Any, str | None]:
        """(status, JSON body, WWW-Authenticate) of one call to the gateway."""
        headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
        http = await self.http()
        url = await self.gateway_url() + path
        async with http.request(method, url, headers=headers, json=body) as response:
            return response.status, await response.json(), response.headers.get("WWW-Authenticate")

    def guard(self) -> BearerGuard:
        if self._guard is None:
            client = AsyncAuthClient(self.server.target)
            self._stack.push_async_callback(client.close)
            self._guard = BearerGuard(client)
        return self._guard

    def blocking_guard(self) -> BlockingBearerGuard:
        if self._blocking_guard is None:
            client = AuthClient(self.server.target)
            self._stack.callback(client.close)
            self._blocking_guard = BlockingBearerGuard(client)
        return self._blocking_guard


@asynccontextmanager
async def open_bench(server: ServerHandle) -> AsyncIterator[Bench]:
    async with AsyncExitStack() as stack:
        yield Bench(server, stack)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def grpc_outcome(call: Awaitable[Any]) -> str:
    """ACCEPTED, or "<status code> <reason word>" of the failed call."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        info = error_info(error)
        if info is None:
            return f"{error.code().name} (no ErrorInfo: {error.details()})"
        assert info.domain == "authsvc"
        return f"{error.code().name} {info.reason}"
    return ACCEPTED


def rest_outcome(status: int, body: Any, www_authenticate: str | None) -> str:
    """ACCEPTED for a 200, else "HTTP <status> <code> <reason>" after checking the one error shape."""
    if status == 200:
        return ACCEPTED
    assert isinstance(body, dict) and set(body) == {"detail", "code", "reason"}, body
    assert isinstance(body["detail"], str) and body["detail"], body
    if status == 401:
        assert www_authenticate == "Bearer"  # RFC 6750 section 3
    return f"HTTP {status} {body['code']} {body['reason']}"


def introspection_outcome(active: bool, inactive_answer_is_bare: bool) -> str:
    # RFC 7662 section 2.2: an inactive token's answer says nothing but `"active": false`.
    if active:
        return ACCEPTED
    assert inactive_answer_is_bare
    return INACTIVE


async def _grpc_list_sessions(bench: Bench, token: str) -> str:
    request = auth_pb2.ListSessionsRequest()
    return await grpc_outcome(bench.server.stub.ListSessions(request, metadata=bearer(token)))


async def _grpc_logout_all(bench: Bench, token: str) -> str:
    request = auth_pb2.LogoutAllRequest()
    return await grpc_outcome(bench.server.stub.LogoutAll(request, metadata=bearer(token)))


async def _grpc_refresh(bench: Bench, token: str) -> str:
    return await grpc_outcome(bench.server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=token)))


async def _grpc_logout(bench: Bench, token: str) -> str:
    return await grpc_outcome(bench.server.stub.Logout(auth_pb2.LogoutRequest(refresh_token=token)))


async def _grpc_introspect(bench: Bench, token: str) -> str:
    answer = await bench.server.stub.Introspect(auth_pb2.IntrospectRequest(token=token))
    return introspection_outcome(answer.active, answer == auth_pb2.IntrospectResponse(active=False))


async def _rest_sessions(bench: Bench, token: str) -> str:
    return rest_outcome(*await bench.rest("GET", "/api/v1/auth/sessions", bearer=token))


async def _rest_logout_all(bench: Bench, token: str) -> str:
    return rest_outcome(*await bench.rest("POST", "/api/v1/auth/logout-all", bearer=token, body={}))


async def _rest_refresh(bench: Bench, token: str) -> str:
    return rest_outcome(*await bench.rest("POST", "/api/v1/auth/refresh", body={"refresh_token": token}))


async def _rest_logout(bench: Bench, token: str) -> str:
    return rest_outcome(*await bench.rest("POST", "/api/v1/auth/logout", body={"refresh_token": token}))


async def _rest_introspect(bench: Bench, token: str) -> str:
    status, body, _ = await bench.rest("POST", "/api/v1/auth/introspect", body={"token": token})
    assert status == 200, body  # RFC 7662: inactive is an answer, never an error
    return introspection_outcome(body.get("active") is True, body == {"active": False})


def guard_refusal(error: GuardError) -> str:
    return f"GuardError {error.code.name} {error.reason}"


async def _guard(bench: Bench, token: str) -> str:
    try:
        await bench.guard().verify_bearer(bearer(token))
    except GuardError as error:
        return guard_refusal(error)
    return ACCEPTED


def _blocking_guard_outcome(guard: BlockingBearerGuard, token: str) -> str:
    try:
        guard.verify_bearer(bearer(token))
    except GuardError as error:
        return guard_refusal(error)
    return ACCEPTED


async def _blocking_guard(bench: Bench, token: str) -> str:
    # In a thread: the guard's blocking client calls the server running on this event loop.
    return await asyncio.to_thread(_blocking_guard_outcome, bench.blocking_guard(), token)


@dataclass(frozen=True)
class Place:
    """One door a token can be presented at: which kind it expects and how it refuses the others."""

    name: str
    expects: str  # ACCESS or REFRESH
    refusal: str
    present: Callable[[Bench, str], Awaitable[str]]

    def __str__(self) -> str:
        return self.name


PLACES = [
    Place("as bearer to ListSessions over gRPC", ACCESS, GRPC_REFUSED, _grpc_list_sessions),
    Place("as bearer to LogoutAll over gRPC", ACCESS, GRPC_REFUSED, _grpc_logout_all),
    Place("as refresh_token to Refresh over gRPC", REFRESH, GRPC_REFUSED, _grpc_refresh),
    Place("as refresh_token to Logout over gRPC", REFRESH, GRPC_REFUSED, _grpc_logout),
    Place("to Introspect over gRPC", ACCESS, INACTIVE, _grpc_introspect),
    Place("as bearer to GET /api/v1/auth/sessions", ACCESS, REST_REFUSED, _rest_sessions),
    Place("as bearer to POST /api/v1/auth/logout-all", ACCESS, REST_REFUSED, _rest_logout_all),
    Place("as refresh_token to POST /api/v1/auth/refresh", REFRESH, REST_REFUSED, _rest_refresh),
    Place("as refresh_token to POST /api/v1/auth/logout", REFRESH, REST_REFUSED, _rest_logout),
    Place("to POST /api/v1/auth/introspect", ACCESS, INACTIVE, _rest_introspect),
    Place("to the BearerGuard", ACCESS, GUARD_REFUSED, _guard),
    Place("to the BlockingBearerGuard", ACCESS, GUARD_REFUSED, _blocking_guard),
]


def server_signing_key(server: ServerHandle) -> SigningKey:
    """The server's real signing key, read from its keys directory (which already holds it)."""
    now = server.clock()
    return KeyRing.from_files(load_or_create_keys(server.settings.signing_keys_dir, now)).signing_at(now)


def legacy_refresh_jwt(server: ServerHandle, access_token: str, generation: int) -> str:
    """A refresh token as the server issued them before opaque ones: a JWT with pyjwt's default header
    (typ JWT) signed by a ring key, for the session and user of `access_token`."""
    claims = jwt.decode(access_token, options={"verify_signature": False})
    issued_at = to_epoch_seconds(server.clock())
    session_id = claims["sid"]
    key = server_signing_key(server)
    legacy = {
        "iss": server.settings.issuer,
        "aud": server.settings.audience,
        "sub": claims["sub"],
        "sid": session_id,
        "jti": f"{session_id}.{generation}",
        "gen": generation,
        "iat": issued_at,
        "exp": issued_at + REFRESH_TTL_SECONDS,
        "type": "refresh",
    }
    return jwt.encode(legacy, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})


def resigned(server: ServerHandle, token: str, typ: str) -> str:
    """`token`'s claims, signed with the server's real key under header `typ`."""
    claims = jwt.decode(token, options={"verify_signature": False})
    key = server_signing_key(server)
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid, "typ": typ})
