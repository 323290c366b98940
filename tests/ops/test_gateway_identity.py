"""Under mutual TLS the server can know its REST gateway by its client certificate: one whose names (the
subject alternative names, or the common name without any) include one of AUTHSVC_GATEWAY_TLS_NAMES. Only
that caller's forwarded address is believed; another service with a certificate from the same CA is
recorded at its own address, like any direct caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from authsvc import gateway_secret
from authsvc.app.start import RunningServer, start_server
from authsvc.gateway import GatewaySettings, RunningGateway, start_gateway
from tests.addresses import forwarded_for, http_from, loopback, relay_from
from tests.conftest import PASSWORD, make_settings
from tests.ops.conftest import Pki

GATEWAY_NAME = "authsvc-test-client"  # the DNS name in the pki fixture's client certificate
CREDENTIALS = {"email": "ada@example.com", "password": PASSWORD}


@asynccontextmanager
async def mtls_pair(
    pki: Pki, tmp_path: Path, names: tuple[str, ...]
) -> AsyncIterator[tuple[RunningServer, RunningGateway]]:
    """A server under mutual TLS that knows the gateway by `names`, and a gateway that shows its client
    certificate and no secret."""
    settings = make_settings(
        tmp_path / "data",
        tls_cert_file=pki.server_cert,
        tls_key_file=pki.server_key,
        tls_client_ca_file=pki.ca_file,
        gateway_tls_names=names,
        gateway_secret_file=tmp_path / "data" / gateway_secret.FILE_NAME,
    )
    server = await start_server(settings)
    gateway = await start_gateway(
        GatewaySettings(
            http_host="127.0.0.1",
            http_port=0,
            grpc_target=server.target,
            deadline_seconds=5,
            grpc_tls_ca_file=pki.ca_file,
            grpc_tls_cert_file=pki.client_cert,
            grpc_tls_key_file=pki.client_key,
            gateway_secret_file=None,
        )
    )
    try:
        yield server, gateway
    finally:
        await gateway.stop()
        await server.stop(1)


async def recorded_over_http(gateway: RunningGateway, source: str) -> str:
    async with http_from(source) as http:
        async with http.post(f"{gateway.url}/api/v1/auth/register", json=CREDENTIALS) as answer:
            assert answer.status in (201, 409)
        async with http.post(f"{gateway.url}/api/v1/auth/login", json=CREDENTIALS) as answer:
            pair = await answer.json()
        bearer = {"Authorization": f"Bearer {pair['access_token']}"}
        async with http.get(f"{gateway.url}/api/v1/auth/sessions", headers=bearer) as answer:
            sessions = (await answer.json())["sessions"]
    (session,) = [s for s in sessions if s["session_id"] == pair["session_id"]]
    return str(session["ip_address"])


async def test_a_gateway_named_by_its_certificate_is_believed(pki: Pki, tmp_path: Path):
    async with mtls_pair(pki, tmp_path, (GATEWAY_NAME,)) as (_, gateway):
        assert await recorded_over_http(gateway, loopback(5)) == loopback(5)


async def test_a_gateway_whose_certificate_names_another_is_not(pki: Pki, tmp_path: Path):
    async with mtls_pair(pki, tmp_path, ("the-real-gateway",)) as (_, gateway):
        assert await recorded_over_http(gateway, loopback(5)) == "127.0.0.1"  # the gateway's own address


@pytest.mark.parametrize(("holder", "believed"), [("gateway", True), ("another service", False)])
async def test_only_the_named_certificate_is_believed_over_grpc(
    pki: Pki, tmp_path: Path, holder: str, believed: bool
):
    other_cert, other_key = pki.ca.client("another service").write(tmp_path / "other", "other")
    cert, key = (pki.client_cert, pki.client_key) if holder == "gateway" else (other_cert, other_key)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.pem, private_key=key.read_bytes(), certificate_chain=cert.read_bytes()
    )
    async with mtls_pair(pki, tmp_path, (GATEWAY_NAME,)) as (server, _):
        assert await recorded_over_grpc(server, credentials, loopback(6)) == (
            "203.0.113.9" if believed else loopback(6)
        )


async def recorded_over_grpc(server: RunningServer, credentials: grpc.ChannelCredentials, source: str) -> str:
    async with (
        relay_from(source, server.target) as relayed,
        grpc.aio.secure_channel(relayed, credentials) as channel,
    ):
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        await stub.Register(auth_pb2.RegisterRequest(**CREDENTIALS))
        pair = await stub.Login(auth_pb2.LoginRequest(**CREDENTIALS), metadata=forwarded_for("203.0.113.9"))
        bearer = (("authorization", f"Bearer {pair.access_token}"),)
        answer = await stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer)
    (session,) = answer.sessions
    return session.ip_address
