"""TLS and mutual TLS on the gRPC port, and certificates reloaded without a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authsvc.app.start import RunningServer, StartupError, start_server
from authsvc.transport.tls import TlsError
from tests.conftest import PASSWORD, make_settings
from tests.ops.certs import Authority
from tests.ops.conftest import Pki, health_over


@pytest.fixture
async def tls_server(pki: Pki, tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = make_settings(tmp_path / "data", tls_cert_file=pki.server_cert, tls_key_file=pki.server_key)
    running = await start_server(settings)
    yield running
    await running.stop(1)


@pytest.fixture
async def mtls_server(pki: Pki, tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = make_settings(
        tmp_path / "data",
        tls_cert_file=pki.server_cert,
        tls_key_file=pki.server_key,
        tls_client_ca_file=pki.ca_file,
    )
    running = await start_server(settings)
    yield running
    await running.stop(1)


async def test_a_client_trusting_the_ca_calls_the_service_over_tls(tls_server, pki):
    async with grpc.aio.secure_channel(tls_server.target, pki.credentials()) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        await stub.Register(auth_pb2.RegisterRequest(email="ada@example.com", password=PASSWORD))
        pair = await stub.Login(auth_pb2.LoginRequest(email="ada@example.com", password=PASSWORD))
    assert pair.access_token


@pytest.mark.parametrize(
    ("description", "how"),
    [
        ("a plain-text client", "plain"),
        ("a client that trusts another CA", "stranger"),
    ],
)
async def test_clients_that_cannot_verify_or_speak_tls_get_no_answer(tls_server, pki, description, how):
    credentials = None if how == "plain" else pki.credentials(ca=pki.stranger)
    assert await health_over(tls_server.target, credentials) == "UNAVAILABLE", description


async def test_under_mutual_tls_a_client_with_a_certificate_the_ca_signed_is_served(mtls_server, pki):
    assert await health_over(mtls_server.target, pki.credentials(client=True)) == "SERVING"


async def test_under_mutual_tls_a_client_without_a_certificate_is_refused(mtls_server, pki):
    assert await health_over(mtls_server.target, pki.credentials()) == "UNAVAILABLE"


async def test_under_mutual_tls_a_client_certificate_from_another_ca_is_refused(mtls_server, pki, tmp_path):
    cert, key = pki.stranger.client().write(tmp_path / "stranger", "client")
    credentials = grpc.ssl_channel_credentials(pki.ca.pem, key.read_bytes(), cert.read_bytes())
    assert await health_over(mtls_server.target, credentials) == "UNAVAILABLE"


async def test_a_reloaded_certificate_is_served_to_the_next_connection_and_open_ones_stay_up(tls_server, pki):
    kept = grpc.aio.secure_channel(tls_server.target, pki.credentials())
    kept_stub = health_pb2_grpc.HealthStub(kept)
    await kept_stub.Check(health_pb2.HealthCheckRequest(), timeout=5)

    successor = Authority("successor CA")
    successor.server().write(pki.directory, "server")  # overwrite the files the server was started with
    tls_server.reload_tls()

    assert await health_over(tls_server.target, pki.credentials(ca=successor)) == "SERVING"
    assert await health_over(tls_server.target, pki.credentials()) == "UNAVAILABLE"
    answer = await kept_stub.Check(health_pb2.HealthCheckRequest(), timeout=5)  # same connection as before
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    await kept.close(None)


async def test_a_reload_of_a_mismatched_pair_is_refused_and_the_old_certificate_stays(tls_server, pki):
    other = pki.ca.server("another server")
    pki.server_key.write_bytes(other.key)  # key of another certificate: a half-finished swap
    with pytest.raises(TlsError, match="is not the private key"):
        tls_server.reload_tls()
    assert await health_over(tls_server.target, pki.credentials()) == "SERVING"


@pytest.mark.parametrize(
    ("description", "broken"),
    [("a missing key file", "missing"), ("a file that is not PEM", "garbage")],
)
async def test_start_up_fails_clearly_on_unusable_tls_files(pki, tmp_path, description, broken):
    if broken == "missing":
        pki.server_key.unlink()
    else:
        pki.server_cert.write_text("not a certificate")
    settings = make_settings(tmp_path / "data", tls_cert_file=pki.server_cert, tls_key_file=pki.server_key)
    with pytest.raises(StartupError, match="server"):
        await start_server(settings)


async def test_tls_reload_is_a_no_op_without_tls(auth_server):
    auth_server.running.reload_tls()
    await asyncio.sleep(0)
