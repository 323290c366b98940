"""Deadlines on every call; retries (set by the service config) of UNAVAILABLE and CANCELLED for the
retry-safe RPCs only; round robin over several replicas, skipping one that is NOT_SERVING; TLS and mutual
TLS."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import time

import grpc
import pytest
from authsvc_client import (
    NO_RETRIES,
    AsyncAuthClient,
    AuthClient,
    AuthServiceError,
    DeadlineExceeded,
    RetryPolicy,
    Tls,
    Unavailable,
)
from authsvc_proto.v1 import auth_pb2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.clients.conftest import PASSWORD, ThreadedClient, start_fake
from tests.ports import free_port


async def test_a_call_with_no_answer_fails_at_the_client_default_deadline():
    never = asyncio.Event()

    async def login(request, context):
        await never.wait()

    server, target = await start_fake({"Login": login})
    try:
        async with AsyncAuthClient(target, timeout=0.3) as client:
            started = time.monotonic()
            with pytest.raises(DeadlineExceeded):
                await client.login("ada@example.com", PASSWORD)
            assert 0.25 < time.monotonic() - started < 2
            started = time.monotonic()
            with pytest.raises(DeadlineExceeded):
                await client.login("ada@example.com", PASSWORD, timeout=0.05)
            assert time.monotonic() - started < 0.25
    finally:
        await server.stop(0)


async def test_the_blocking_client_has_the_same_deadline():
    never = asyncio.Event()

    async def get_jwks(request, context):
        await never.wait()

    server, target = await start_fake({"GetJwks": get_jwks})
    client = AuthClient(target, timeout=0.2)
    try:
        with pytest.raises(DeadlineExceeded):
            await ThreadedClient(client).get_jwks()
    finally:
        client.close()
        await server.stop(0)


async def answering_unavailable(times: int, then: grpc.StatusCode | None = None):
    """A fake whose GetJwks fails UNAVAILABLE `times` times, then with `then`, or succeeds; and its count."""
    attempts = []

    async def get_jwks(request, context):
        attempts.append(1)
        if len(attempts) <= times:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        if then is not None:
            await context.abort(then, "no")
        return auth_pb2.JsonWebKeySet()

    server, target = await start_fake({"GetJwks": get_jwks})
    return server, target, attempts


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_unavailable_is_retried_by_the_channel_until_it_succeeds(kind):
    server, target, attempts = await answering_unavailable(2)
    try:
        if kind == "async":
            async with AsyncAuthClient(target) as client:
                assert await client.get_jwks() == {"keys": []}
        else:
            sync = AuthClient(target)
            assert await ThreadedClient(sync).get_jwks() == {"keys": []}
            sync.close()
        assert len(attempts) == 3
    finally:
        await server.stop(0)


async def test_retries_give_up_after_max_attempts_with_unavailable():
    server, target, attempts = await answering_unavailable(100)
    try:
        async with AsyncAuthClient(target, retry=RetryPolicy(max_attempts=3, initial_backoff=0.01)) as client:
            with pytest.raises(Unavailable):
                await client.get_jwks()
        assert len(attempts) == 3
    finally:
        await server.stop(0)


@pytest.mark.parametrize("code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAUTHENTICATED])
async def test_other_failures_are_never_retried(code):
    server, target, attempts = await answering_unavailable(0, then=code)
    try:
        async with AsyncAuthClient(target) as client:
            with pytest.raises(AuthServiceError):
                await client.get_jwks()
        assert len(attempts) == 1
    finally:
        await server.stop(0)


async def test_without_retries_unavailable_fails_at_the_first_attempt():
    server, target, attempts = await answering_unavailable(1)
    try:
        async with AsyncAuthClient(target, retry=NO_RETRIES) as client:
            with pytest.raises(Unavailable):
                await client.get_jwks()
        assert len(attempts) == 1
    finally:
        await server.stop(0)


async def test_a_retry_safe_rpc_cancelled_by_a_stopping_server_is_sent_again():
    """A stopping grpc.aio server cancels the calls it received but had not started: they never ran."""
    attempts = []

    async def get_jwks(request, context):
        attempts.append(1)
        if len(attempts) == 1:
            await context.abort(grpc.StatusCode.CANCELLED, "server shutting down")
        return auth_pb2.JsonWebKeySet()

    server, target = await start_fake({"GetJwks": get_jwks})
    try:
        async with AsyncAuthClient(target) as client:
            assert await client.get_jwks() == {"keys": []}
        assert len(attempts) == 2
    finally:
        await server.stop(0)


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED])
@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_login_is_never_sent_twice(kind, code):
    """A second Login would open a second session: only the first attempt is sent, whatever failed."""
    attempts = []

    async def login(request, context):
        attempts.append(1)
        await context.abort(code, "try again")

    server, target = await start_fake({"Login": login})
    try:
        if kind == "async":
            async with AsyncAuthClient(target) as client:
                with pytest.raises(AuthServiceError) as caught:
                    await client.login("ada@example.com", PASSWORD)
        else:
            sync = AuthClient(target)
            with pytest.raises(AuthServiceError) as caught:
                await ThreadedClient(sync).login("ada@example.com", PASSWORD)
            sync.close()
        assert caught.value.code == code
        assert len(attempts) == 1
    finally:
        await server.stop(0)


async def fake_replica(name: str, served: list[str]):
    """A fake replica with AuthService.GetJwks (recording `name` in `served`) and the health service."""

    async def get_jwks(request, context):
        served.append(name)
        return auth_pb2.JsonWebKeySet()

    method = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].methods_by_name["GetJwks"]
    handler = grpc.unary_unary_rpc_method_handler(
        get_jwks,
        request_deserializer=auth_pb2.GetJwksRequest.FromString,
        response_serializer=lambda message: message.SerializeToString(),
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("authsvc.v1.AuthService", {method.name: handler}),)
    )
    checker = health.aio.HealthServicer()  # type: ignore[attr-defined]  # grpc-stubs predates it
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port, checker


async def test_calls_go_round_robin_to_every_listed_replica_but_one_not_serving():
    served: list[str] = []
    a, port_a, _ = await fake_replica("a", served)
    b, port_b, health_b = await fake_replica("b", served)
    try:
        async with AsyncAuthClient(f"ipv4:127.0.0.1:{port_a},127.0.0.1:{port_b}") as client:
            # Round robin starts once both connections are up: wait until b has answered once.
            async with asyncio.timeout(10):
                while "b" not in served:
                    await client.get_jwks()
            served.clear()
            for _ in range(10):
                await client.get_jwks()
            assert served.count("a") == served.count("b") == 5
            await health_b.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
            # The channel watches b's health: once it has heard, every call goes to a (while b was in the
            # rotation, no two calls in a row went to a).
            async with asyncio.timeout(10):
                while served[-10:] != ["a"] * 10:
                    await client.get_jwks()
    finally:
        await a.stop(0)
        await b.stop(0)


async def test_a_dns_target_reaches_the_server():
    served: list[str] = []
    server, port, _ = await fake_replica("only", served)
    try:
        async with AsyncAuthClient(f"dns:///localhost:{port}") as client:
            assert await client.get_jwks() == {"keys": []}
        assert served == ["only"]
    finally:
        await server.stop(0)


async def wait_for_state(channel: grpc.aio.Channel, wanted: grpc.ChannelConnectivity) -> None:
    async with asyncio.timeout(5):
        while (state := channel.get_state()) != wanted:
            await channel.wait_for_state_change(state)


async def test_a_call_made_before_the_server_is_up_succeeds_once_it_comes_up():
    port = free_port()
    target = f"127.0.0.1:{port}"
    async with AsyncAuthClient(target, retry=RetryPolicy(initial_backoff=0.2, max_backoff=1.0)) as client:
        call = asyncio.create_task(client.get_jwks())
        # The first attempt has met a refused connection before the server exists.
        await wait_for_state(client._channel, grpc.ChannelConnectivity.TRANSIENT_FAILURE)
        assert not call.done()

        async def get_jwks(request, context):
            return auth_pb2.JsonWebKeySet(keys=[auth_pb2.JsonWebKey(kid="k")])

        server, _ = await start_fake({"GetJwks": get_jwks}, port=port)
        try:
            assert await call == {"keys": [{"kid": "k"}]}
        finally:
            await server.stop(0)


async def test_without_retries_a_server_that_is_not_up_is_unavailable_at_once():
    async with AsyncAuthClient(f"127.0.0.1:{free_port()}", retry=NO_RETRIES) as client:
        with pytest.raises(Unavailable):
            await client.get_jwks()


def self_signed() -> tuple[bytes, bytes]:
    """A certificate for 127.0.0.1 and localhost, and its key, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "authsvc test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


async def jwks_answer(request, context):
    return auth_pb2.JsonWebKeySet(keys=[auth_pb2.JsonWebKey(kid="over-tls")])


async def test_tls_verifies_the_server_against_the_given_root():
    cert, key = self_signed()
    credentials = grpc.ssl_server_credentials([(key, cert)])
    server, target = await start_fake({"GetJwks": jwks_answer}, credentials=credentials)
    try:
        async with AsyncAuthClient(target, tls=Tls(root_certificates=cert)) as client:
            assert await client.get_jwks() == {"keys": [{"kid": "over-tls"}]}
        other_root, _ = self_signed()
        async with AsyncAuthClient(target, tls=Tls(root_certificates=other_root), retry=NO_RETRIES) as client:
            with pytest.raises(Unavailable):
                await client.get_jwks()
        async with AsyncAuthClient(target, retry=NO_RETRIES) as plaintext:
            with pytest.raises(Unavailable):
                await plaintext.get_jwks()
    finally:
        await server.stop(0)


async def test_mutual_tls_sends_the_client_certificate():
    cert, key = self_signed()
    credentials = grpc.ssl_server_credentials([(key, cert)], root_certificates=cert, require_client_auth=True)
    server, target = await start_fake({"GetJwks": jwks_answer}, credentials=credentials)
    try:
        tls = Tls(root_certificates=cert, certificate_chain=cert, private_key=key)
        sync = AuthClient(target, tls=tls)
        assert await ThreadedClient(sync).get_jwks() == {"keys": [{"kid": "over-tls"}]}
        sync.close()
        async with AsyncAuthClient(target, tls=Tls(root_certificates=cert), retry=NO_RETRIES) as anonymous:
            with pytest.raises(Unavailable):
                await anonymous.get_jwks()
    finally:
        await server.stop(0)
