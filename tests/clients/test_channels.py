"""Deadlines on every call, retries of UNAVAILABLE only (set by the service config), TLS and mutual TLS."""

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
