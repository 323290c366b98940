"""Who is believed about the client: the gateway (its secret, or its certificate's name under mutual TLS)
and AUTHSVC_TRUSTED_PROXIES; everyone else is its own peer address. Over real gRPC and HTTP in
tests/security/test_forwarded_addresses.py and tests/ops/test_gateway_identity.py; here the decision."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pytest

from authsvc.gateway_secret import METADATA_KEY
from authsvc.transport.client_info import client_info
from authsvc.transport.gateway_trust import GatewayTrust

SECRET = "s" * 43
FORWARDED = (("x-forwarded-for", "203.0.113.9"), ("grpcgateway-user-agent", "Firefox/140"))
GRPC_AGENT = (("user-agent", "grpc-python/1.85"),)
PROXY = (ipaddress.ip_network("10.0.0.0/8"),)


@dataclass
class FakeContext:
    identities: list[bytes] | None = None

    def peer_identities(self) -> list[bytes] | None:
        return self.identities

    def peer(self) -> str:
        return "ipv4:127.0.0.5:4000"


@pytest.mark.parametrize(
    ("peer", "from_gateway", "expected"),
    [
        ("ipv4:127.0.0.5:4000", False, ("127.0.0.5", "grpc-python/1.85")),  # loopback is nobody special
        ("ipv4:127.0.0.5:4000", True, ("203.0.113.9", "Firefox/140")),
        ("ipv4:10.1.2.3:4000", False, ("203.0.113.9", "Firefox/140")),  # in AUTHSVC_TRUSTED_PROXIES
        ("ipv4:192.0.2.1:4000", False, ("192.0.2.1", "grpc-python/1.85")),
        ("unix:/run/authsvc.sock", True, ("203.0.113.9", "Firefox/140")),  # a gateway over a Unix socket
        ("unix:/run/authsvc.sock", False, (None, "grpc-python/1.85")),
    ],
)
def test_forwarded_values_are_believed_from_the_gateway_and_trusted_proxies_only(
    peer, from_gateway, expected
):
    info = client_info((*GRPC_AGENT, *FORWARDED), peer, PROXY, from_gateway=from_gateway)
    assert (info.ip_address, info.user_agent) == expected


def test_the_secret_proves_the_gateway_and_nothing_else_does():
    trust = GatewayTrust(SECRET)
    context = FakeContext()
    assert trust.is_gateway(((METADATA_KEY, SECRET),), context) is True
    for offered in ("", SECRET[:-1], SECRET + "s", SECRET.upper(), "é" * 43):
        assert trust.is_gateway(((METADATA_KEY, offered),), context) is False, offered
    assert trust.is_gateway((), context) is False
    assert trust.is_gateway(None, context) is False


def test_without_a_secret_no_offered_value_is_believed():
    assert GatewayTrust(None).is_gateway(((METADATA_KEY, ""),), FakeContext()) is False


def test_under_mutual_tls_a_certificate_naming_the_gateway_proves_it():
    trust = GatewayTrust(SECRET, ("gateway.internal",))
    assert trust.is_gateway((), FakeContext([b"other.internal", b"gateway.internal"])) is True
    assert trust.is_gateway((), FakeContext([b"other.internal"])) is False
    assert trust.is_gateway((), FakeContext(None)) is False  # no verified certificate
    assert GatewayTrust(SECRET).is_gateway((), FakeContext([b"gateway.internal"])) is False  # no names set
