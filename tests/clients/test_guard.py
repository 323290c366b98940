"""The bearer guard in front of an internal service: valid access tokens in, the handler sees the user;
expired, forged, wrong-type, wrong-audience and (with revocation checks) revoked tokens out, each as
UNAUTHENTICATED with its reason word; keys refetched after a rotation, at a bounded rate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import jwt
import pytest
from authsvc_client import (
    AsyncAuthClient,
    BearerGuard,
    GuardError,
    GuardInterceptor,
    Introspection,
    Unavailable,
    User,
    current_user,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authsvc.store.key_files import add_key
from tests.clients.conftest import PASSWORD, CallCounter
from tests.status import error_info

SECRET = "internal-introspection-secret-0123456789"  # at least 32 bytes
HELLO = "/example.v1.Greeter/Hello"
HELLO_STREAM = "/example.v1.Greeter/HelloStream"
PING = "/example.v1.Greeter/Ping"
COUNT = "/example.v1.Greeter/Count"
ECHO = "/example.v1.Greeter/Echo"


def _identity(data: bytes) -> bytes:
    return data


async def hello(request: bytes, context: Any) -> bytes:
    user = current_user()
    return f"hello {user.email} ({user.session_id})".encode()


async def hello_stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for word in ("hello", current_user().user_id):
        yield word.encode()


async def ping(request: bytes, context: Any) -> bytes:
    return b"pong"


async def count(requests: AsyncIterator[bytes], context: Any) -> bytes:
    received = [item async for item in requests]
    return f"{len(received)} from {current_user().email}".encode()


async def echo(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
    async for item in requests:
        yield item + f" to {current_user().email}".encode()


async def start_protected(guard: BearerGuard) -> tuple[grpc.aio.Server, grpc.aio.Channel]:
    """A proto-free service behind the guard, all but Ping guarded; and a channel to it."""
    handlers = {
        "Hello": grpc.unary_unary_rpc_method_handler(hello, _identity, _identity),
        "HelloStream": grpc.unary_stream_rpc_method_handler(hello_stream, _identity, _identity),
        "Ping": grpc.unary_unary_rpc_method_handler(ping, _identity, _identity),
        "Count": grpc.stream_unary_rpc_method_handler(count, _identity, _identity),
        "Echo": grpc.stream_stream_rpc_method_handler(echo, _identity, _identity),
    }
    server = grpc.aio.server(interceptors=[GuardInterceptor(guard, exempt={PING})])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("example.v1.Greeter", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, grpc.aio.insecure_channel(f"127.0.0.1:{port}")


class Harness:
    def __init__(self, auth_server: Any, source: AsyncAuthClient, counter: CallCounter) -> None:
        self.auth_server = auth_server
        self.source = source
        self.counter = counter
        self.servers: list[grpc.aio.Server] = []
        self.channels: list[grpc.aio.Channel] = []

    async def protect(self, **options: Any) -> tuple[BearerGuard, grpc.aio.Channel]:
        guard = BearerGuard(self.source, **options)
        server, channel = await start_protected(guard)
        self.servers.append(server)
        self.channels.append(channel)
        return guard, channel

    async def login(self) -> Any:
        return await self.source.login("ada@example.com", PASSWORD)


@pytest.fixture
async def harness(auth_server, register) -> AsyncIterator[Harness]:
    await register()
    counter = CallCounter()
    source = AsyncAuthClient(auth_server.target, interceptors=[counter], introspection_secret=SECRET)
    made = Harness(auth_server, source, counter)
    yield made
    for channel in made.channels:
        await channel.close(None)
    for server in made.servers:
        await server.stop(0)
    await made.source.close()


async def call(channel: grpc.aio.Channel, token: str | None, method: str = HELLO) -> bytes:
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else None
    answer: bytes = await channel.unary_unary(method, _identity, _identity)(b"", metadata=metadata, timeout=5)
    return answer


async def refused(channel: grpc.aio.Channel, token: str | None) -> tuple[grpc.StatusCode, str | None]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(channel, token)
    info = error_info(caught.value)
    return caught.value.code(), info.reason if info else None


async def test_a_valid_access_token_reaches_the_handler_with_its_user(harness):
    _, channel = await harness.protect()
    pair = await harness.login()
    assert await call(channel, pair.access_token) == f"hello ada@example.com ({pair.session_id})".encode()
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    stream = channel.unary_stream(HELLO_STREAM, _identity, _identity)(
        b"", metadata=(("authorization", f"Bearer {pair.access_token}"),)
    )
    assert [item async for item in stream] == [b"hello", claims["sub"].encode()]
    assert harness.counter.calls["GetJwks"] == 1
    await call(channel, pair.access_token)
    assert harness.counter.calls["GetJwks"] == 1  # the key set is cached


async def test_calls_that_stream_requests_are_guarded_too(harness):
    _, channel = await harness.protect()
    pair = await harness.login()
    upload = channel.stream_unary(COUNT, _identity, _identity)
    chat = channel.stream_stream(ECHO, _identity, _identity)

    async def count_as(metadata: Any, requests: list[bytes]) -> bytes:
        answer: bytes = await upload(iter(requests), metadata=metadata, timeout=5)
        return answer

    async def echo_as(metadata: Any, requests: list[bytes]) -> list[bytes]:
        return [item async for item in chat(iter(requests), metadata=metadata, timeout=5)]

    bearer = (("authorization", f"Bearer {pair.access_token}"),)
    assert await count_as(bearer, [b"a", b"b"]) == b"2 from ada@example.com"
    assert await echo_as(bearer, [b"a", b"b"]) == [b"a to ada@example.com", b"b to ada@example.com"]
    # No requests to send: grpc.aio can report a refusal that arrives while the client is still
    # writing as INTERNAL instead of the server's status.
    for unauthenticated in (count_as(None, []), echo_as(None, [])):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await unauthenticated
        info = error_info(caught.value)
        assert (caught.value.code(), info.reason if info else None) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "NOT_AUTHENTICATED",
        )


async def test_verify_bearer_is_a_plain_function_of_the_metadata(harness):
    guard = BearerGuard(harness.source)
    pair = await harness.login()
    user = await guard.verify_bearer((("authorization", f"bearer {pair.access_token}"),))
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    assert user == User(
        user_id=claims["sub"],
        session_id=pair.session_id,
        email="ada@example.com",
        role="user",
        expires_at=claims["exp"],
    )
    with pytest.raises(GuardError) as caught:
        await guard.verify_bearer((("x-other", "1"),))
    assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.UNAUTHENTICATED, "NOT_AUTHENTICATED")


async def test_an_exempt_method_needs_no_token_and_outside_a_call_there_is_no_user(harness):
    _, channel = await harness.protect()
    assert await call(channel, None, PING) == b"pong"
    with pytest.raises(LookupError):
        current_user()


def forged(claims: dict[str, Any], kid: str, key: Any = None, algorithm: str = "EdDSA") -> str:
    headers = {"kid": kid, "typ": "at+jwt"}
    return jwt.encode(claims, key or Ed25519PrivateKey.generate(), algorithm=algorithm, headers=headers)


@pytest.mark.parametrize(
    "case",
    [
        "no bearer",
        "junk",
        "refresh token",
        "forged with the real kid",
        "alg none",
        "wrong audience",
        "expired",
    ],
)
async def test_bad_tokens_are_refused_with_their_reason(harness, case):
    pair = await harness.login()
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(pair.access_token)["kid"]
    options: dict[str, Any] = {}
    token: str | None
    expected = "TOKEN_INVALID"
    if case == "no bearer":
        token, expected = None, "NOT_AUTHENTICATED"
    elif case == "junk":
        token = "not.a.token"
    elif case == "refresh token":
        token = pair.refresh_token
    elif case == "forged with the real kid":
        token = forged(claims, kid)
    elif case == "alg none":
        token = jwt.encode(claims, "", algorithm="none", headers={"kid": kid})
    elif case == "wrong audience":
        token, options = pair.access_token, {"audience": "another-service"}
    else:
        token, options, expected = pair.access_token, {"clock": lambda: claims["exp"]}, "TOKEN_EXPIRED"
    _, channel = await harness.protect(**options)
    assert await refused(channel, token) == (grpc.StatusCode.UNAUTHENTICATED, expected)


async def test_a_token_one_second_before_expiry_is_accepted(harness):
    pair = await harness.login()
    exp = jwt.decode(pair.access_token, options={"verify_signature": False})["exp"]
    _, channel = await harness.protect(clock=lambda: exp - 1)
    await call(channel, pair.access_token)


async def test_after_a_key_rotation_the_guard_refetches_the_keys_for_the_new_kid(harness):
    auth_server = harness.auth_server
    _, channel = await harness.protect()
    before = await harness.login()
    await call(channel, before.access_token)
    add_key(auth_server.settings.signing_keys_dir, auth_server.clock())
    await auth_server.running.reload_keys()  # what the server does every AUTHSVC_KEYS_RELOAD_SECONDS
    auth_server.clock.advance(auth_server.settings.key_activation_delay_seconds + 1)
    after = await harness.login()
    assert (
        jwt.get_unverified_header(after.access_token)["kid"]
        != jwt.get_unverified_header(before.access_token)["kid"]
    )
    assert await call(channel, after.access_token)
    assert await call(channel, before.access_token)  # the old key still verifies its live tokens
    assert harness.counter.calls["GetJwks"] == 2


async def test_unknown_kids_refetch_the_keys_at_most_once_per_interval(harness):
    _, channel = await harness.protect(refetch_interval=3600)
    pair = await harness.login()
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    await call(channel, pair.access_token)
    for attempt in range(3):
        assert await refused(channel, forged(claims, f"unknown-{attempt}")) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_INVALID",
        )
    assert harness.counter.calls["GetJwks"] == 2  # the first fetch, then one refetch for all three


async def test_a_first_token_with_an_unknown_kid_costs_one_key_fetch_not_two(harness):
    guard = BearerGuard(harness.source)
    claims = jwt.decode((await harness.login()).access_token, options={"verify_signature": False})
    with pytest.raises(GuardError):
        await guard.verify_token(forged(claims, "unknown"))
    assert harness.counter.calls["GetJwks"] == 1


@pytest.mark.parametrize("server_settings", [{"introspection_secret": SECRET}], indirect=True)
async def test_with_revocation_checks_a_revoked_session_is_refused_at_once(harness):
    _, checked = await harness.protect(check_revocation=True)
    _, offline = await harness.protect()
    pair = await harness.login()
    assert await call(checked, pair.access_token)
    await harness.source.logout(pair.refresh_token)
    assert await refused(checked, pair.access_token) == (grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED")
    # Offline verification alone cannot see the revocation until the token expires: the documented trade-off.
    assert await call(offline, pair.access_token)
    assert harness.counter.calls["Introspect"] == 2


class IntrospectionDown:
    """The real key set, but Introspect unreachable."""

    def __init__(self, client: AsyncAuthClient) -> None:
        self._client = client

    async def get_jwks(self) -> dict[str, Any]:
        return await self._client.get_jwks()

    async def introspect(self, token: str) -> Introspection:
        raise Unavailable(grpc.StatusCode.UNAVAILABLE, "STORE_UNAVAILABLE", "down")


async def test_when_revocation_cannot_be_checked_the_call_is_refused_as_unavailable(harness):
    guard = BearerGuard(IntrospectionDown(harness.source), check_revocation=True)
    server, channel = await start_protected(guard)
    harness.servers.append(server)
    harness.channels.append(channel)
    pair = await harness.login()
    assert await refused(channel, pair.access_token) == (grpc.StatusCode.UNAVAILABLE, "AUTH_UNAVAILABLE")


class KeysDown:
    """A service whose GetJwks fails: counts the attempts."""

    def __init__(self) -> None:
        self.attempts = 0

    async def get_jwks(self) -> dict[str, Any]:
        self.attempts += 1
        raise Unavailable(grpc.StatusCode.UNAVAILABLE, None, "down")

    async def introspect(self, token: str) -> Introspection:
        raise AssertionError("not asked without revocation checks")


async def test_during_an_outage_cached_keys_keep_verifying_and_refetches_are_spaced(harness):
    now = [0.0]
    guard = BearerGuard(harness.source, jwks_max_age=60, refetch_interval=30, monotonic=lambda: now[0])
    pair = await harness.login()
    await guard.verify_token(pair.access_token)
    down = KeysDown()
    guard._source = down
    now[0] = 60  # the cached set is due for a refetch, and the service is down
    for _ in range(3):
        assert (await guard.verify_token(pair.access_token)).session_id == pair.session_id
    assert down.attempts == 1
    now[0] = 90
    await guard.verify_token(pair.access_token)
    assert down.attempts == 2


async def test_with_no_keys_yet_and_the_service_down_calls_are_refused_as_unavailable(harness):
    with pytest.raises(GuardError) as caught:
        await BearerGuard(KeysDown()).verify_token((await harness.login()).access_token)
    assert (caught.value.code, caught.value.reason) == (grpc.StatusCode.UNAVAILABLE, "AUTH_UNAVAILABLE")
