"""Who is calling: the peer address, a trusted proxy's x-forwarded-for, and the user agent."""

from __future__ import annotations

import ipaddress
import logging

import pytest

from authsvc.domain.audit import ClientInfo
from authsvc.transport.client_info import (
    bearer_token,
    client_address,
    client_info,
    normalise_address,
    peer_ip,
    request_id,
)

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


ZONE_60 = "fe80::1%" + "z" * 60
ZONE_500 = "fe80::1%" + "z" * 500


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("  203.0.113.9\t", "203.0.113.9"),
        ("203.0.113.9:443", "203.0.113.9"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),  # uncompressed, upper case
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        (ZONE_60, "fe80::1"),
        (ZONE_500, "fe80::1"),
        ("[fe80::1%25eth0]:443", "fe80::1"),
        ("::ffff:203.0.113.9", "203.0.113.9"),  # IPv4-mapped IPv6: the IPv4 address it maps
        ("::FFFF:CB00:7109", "203.0.113.9"),
        ("::1", "::1"),
        ("", None),
        ("   ", None),
        ("not an address", None),
        ("unknown", None),
        ("203.0.113.9%eth0", None),  # IPv4 has no zone ids
        ("203.0.113.256", None),
        ("1.2.3.4.5", None),
        ("0x7f.0.0.1", None),
        ("[2001:db8::1", None),
        ("2001:db8::1" + ":0" * 40, None),
        ("x" * 500, None),
        ("1.2.3.4\x00", None),
        ("\u0661.2.3.4", None),  # a non-ASCII digit
        ("203.0.113.9\r\nforged: header", None),
    ],
)
def test_addresses_are_normalised_to_one_short_spelling_or_refused(text, expected):
    normalised = normalise_address(text)
    assert normalised == expected
    assert normalised is None or len(normalised) <= 39


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ("ipv4:198.51.100.7:5000", "198.51.100.7"),
        ("ipv6:%5B::1%5D:5000", "::1"),  # what grpcio 1.5x+ writes: the brackets URL-encoded
        ("ipv6:%5B2001:DB8:0:0:0:0:0:1%5D:5000", "2001:db8::1"),
        ("ipv6:%5Bfe80::1%25eth0%5D:5000", "fe80::1"),
        ("ipv6:%5B::ffff:127.0.0.1%5D:5000", "127.0.0.1"),
        ("ipv6:[::1]:5000", "::1"),
        ("unix:/tmp/sock", None),
        ("unix-abstract:authsvc", None),
    ],
)
def test_the_peer_address_is_normalised(peer, expected):
    assert peer_ip(peer) == expected


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        ("ipv4:127.0.0.1:5000", ZONE_60, "fe80::1"),
        ("ipv4:127.0.0.1:5000", ZONE_500, "fe80::1"),
        ("ipv4:127.0.0.1:5000", "::ffff:203.0.113.9", "203.0.113.9"),
        ("ipv4:127.0.0.1:5000", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("ipv4:127.0.0.1:5000", "203.0.113.9, " + "x" * 500, "127.0.0.1"),
        ("ipv4:127.0.0.1:5000", "x" * 500 + ", 203.0.113.9", "203.0.113.9"),
        # A loopback proxy that reaches the server over IPv6 is trusted like one over IPv4.
        ("ipv6:%5B::1%5D:5000", "203.0.113.9", "203.0.113.9"),
        ("ipv6:%5B::ffff:127.0.0.1%5D:5000", "203.0.113.9", "203.0.113.9"),
    ],
)
def test_hostile_forwarded_values_become_a_normalised_address_or_the_peer(peer, forwarded_for, expected):
    assert client_address(peer, forwarded_for, LOOPBACK) == expected


def test_an_unparsable_forwarded_value_is_logged_at_info_and_ignored(caplog):
    with caplog.at_level(logging.INFO, logger="authsvc.transport.client_info"):
        assert client_address("ipv4:127.0.0.1:5000", "garbage\nforged line", LOOPBACK) == "127.0.0.1"
    (record,) = [r for r in caplog.records if r.name == "authsvc.transport.client_info"]
    assert record.levelno == logging.INFO
    assert "x-forwarded-for" in record.getMessage()


def test_the_domain_drops_an_address_longer_than_any_ip_address():
    assert ClientInfo(ip_address="2001:db8::1").ip_address == "2001:db8::1"
    assert ClientInfo(ip_address="f" * 46).ip_address is None


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


@pytest.mark.parametrize(
    ("sent", "logged"),
    [
        ("req-42 retry=1", "req-42 retry=1"),
        ("line\nbreak\r\tand\x1b[31m", "linebreakand[31m"),  # nothing that could forge a log line
        ("caf\u00e9-\u2028id", "caf-id"),
        ("x" * 500, "x" * 128),
        ("\n\t", None),
        ("", None),
    ],
)
def test_the_request_id_keeps_printable_ascii_only_and_at_most_128_characters(sent, logged):
    assert request_id((("x-request-id", sent),)) == logged
    assert request_id(()) is None
