"""Who is calling: the peer address, a trusted proxy's x-forwarded-for, and the user agent."""

from __future__ import annotations

import ipaddress

import pytest

from authsvc.transport.client_info import bearer_token, client_address, client_info

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        ("ipv4:198.51.100.7:5000", None, "198.51.100.7"),
        ("ipv6:[2001:db8::1]:5000", None, "2001:db8::1"),
        # The sidecar on loopback appends the client's address: the last entry is the one it added.
        ("ipv4:127.0.0.1:5000", "203.0.113.9", "203.0.113.9"),
        ("ipv4:127.0.0.1:5000", "6.6.6.6, 203.0.113.9", "203.0.113.9"),
        # A client that is not a trusted proxy cannot choose its address by writing the header.
        ("ipv4:198.51.100.7:5000", "6.6.6.6", "198.51.100.7"),
        ("ipv4:127.0.0.1:5000", "not an address", "127.0.0.1"),
        ("unix:/tmp/sock", "203.0.113.9", None),
    ],
)
def test_the_client_address_is_the_peer_or_what_a_trusted_proxy_added(peer, forwarded_for, expected):
    assert client_address(peer, forwarded_for, LOOPBACK) == expected


def test_the_gateway_user_agent_wins_over_grpcs_own():
    metadata = (("user-agent", "grpc-python/1.85"), ("grpcgateway-user-agent", "Mozilla/5.0"))
    assert client_info(metadata, "ipv4:127.0.0.1:1", LOOPBACK).user_agent == "Mozilla/5.0"
    assert client_info(metadata[:1], "ipv4:127.0.0.1:1", LOOPBACK).user_agent == "grpc-python/1.85"


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ((), None),
        ((("authorization", "Bearer abc"),), "abc"),
        ((("authorization", "bearer abc"),), "abc"),
        ((("authorization", "Basic abc"),), ""),
        ((("authorization", "Bearer"),), ""),
    ],
)
def test_bearer_tokens_are_read_from_the_authorization_metadata(metadata, expected):
    assert bearer_token(metadata) == expected
