"""Fixtures for the operations tests: a PKI on disk and helpers to dial a server over TLS."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.ops.certs import Authority


@dataclass
class Pki:
    """A CA with a server and a client certificate on disk, and a second, unrelated CA."""

    directory: Path
    ca: Authority
    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger: Authority

    def credentials(self, *, client: bool = False, ca: Authority | None = None) -> grpc.ChannelCredentials:
        root = (ca or self.ca).pem
        if not client:
            return grpc.ssl_channel_credentials(root_certificates=root)
        return grpc.ssl_channel_credentials(
            root_certificates=root,
            private_key=self.client_key.read_bytes(),
            certificate_chain=self.client_cert.read_bytes(),
        )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    directory = tmp_path / "pki"
    ca = Authority()
    ca_file = ca.write(directory / "ca.crt")
    server_cert, server_key = ca.server().write(directory, "server")
    client_cert, client_key = ca.client().write(directory, "client")
    return Pki(
        directory, ca, ca_file, server_cert, server_key, client_cert, client_key, Authority("stranger CA")
    )


async def health_over(target: str, credentials: grpc.ChannelCredentials | None) -> str:
    """The server's overall health over a new channel: SERVING, NOT_SERVING, or the failure's code name."""
    if credentials is None:
        channel = grpc.aio.insecure_channel(target)
    else:
        channel = grpc.aio.secure_channel(target, credentials)
    try:
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))
    except grpc.aio.AioRpcError as exc:
        return str(exc.code().name)
    finally:
        await channel.close(None)
