"""The client address the gateway sends the server (`x-forwarded-for`, one address): the HTTP peer, or,
behind proxies in AUTHSVC_HTTP_TRUSTED_PROXIES, the nearest X-Forwarded-For entry outside them.

Over real HTTP and real servers in tests/security/test_forwarded_addresses.py; here the walk itself.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from authsvc.gateway.metadata import client_address, metadata_of
from authsvc.gateway.settings import GatewaySettings, SettingsError

INGRESS = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


def request(peer: str | None, *forwarded: str):
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda key, default=None: (
        (peer, 40000) if key == "peername" and peer is not None else default
    )
    headers = CIMultiDict(("X-Forwarded-For", value) for value in forwarded)
    return make_mocked_request("POST", "/api/v1/auth/login", headers=headers, transport=transport)


def address(peer: str | None, *forwarded: str, trusted=INGRESS) -> str | None:
    found = client_address(request(peer, *forwarded), trusted)
    return None if found is None else str(found)


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # An untrusted peer: whatever it wrote is ignored.
        ("203.0.113.5", ("198.51.100.7",), "203.0.113.5"),
        ("203.0.113.5", (), "203.0.113.5"),
        # A trusted peer: the nearest entry outside the trusted networks, walking from the right.
        ("10.0.0.2", ("198.51.100.7",), "198.51.100.7"),
        ("10.0.0.2", ("192.0.2.66, 198.51.100.7, 10.1.1.1",), "198.51.100.7"),
        ("10.0.0.2", ("192.0.2.66", "198.51.100.7, 10.1.1.1"), "198.51.100.7"),  # headers joined in order
        ("10.0.0.2", ("198.51.100.7:4711",), "198.51.100.7"),
        ("10.0.0.2", ("[2001:db8::7]:443",), "2001:db8::7"),
        ("10.0.0.2", ("fe80::1%eth0",), "fe80::1"),
        ("10.0.0.2", ("::ffff:198.51.100.7",), "198.51.100.7"),
        ("10.0.0.2", (" , 198.51.100.7 ,, ",), "198.51.100.7"),
        # No header, or only trusted entries: the leftmost trusted address is all that is known.
        ("10.0.0.2", (), "10.0.0.2"),
        ("10.0.0.2", ("10.9.9.9, 10.1.1.1",), "10.9.9.9"),
        # Garbage stops the walk at the proxy that wrote it.
        ("10.0.0.2", ("198.51.100.7, unknown",), "10.0.0.2"),
        ("10.0.0.2", ("198.51.100.7, garbage, 10.1.1.1",), "10.1.1.1"),
        ("10.0.0.2", ("1" * 500,), "10.0.0.2"),
        # IPv6 peers, and an IPv4-mapped peer (a dual-stack listener) is its IPv4 address.
        ("fd00::2", ("2001:db8::9",), "2001:db8::9"),
        ("::ffff:10.0.0.2", ("198.51.100.7",), "198.51.100.7"),
        ("::ffff:203.0.113.5", ("198.51.100.7",), "203.0.113.5"),
    ],
)
def test_the_client_is_the_peer_or_the_nearest_address_past_trusted_proxies(peer, forwarded, expected):
    assert address(peer, *forwarded) == expected


def test_without_trusted_proxies_x_forwarded_for_is_never_read():
    assert address("10.0.0.2", "198.51.100.7", trusted=()) == "10.0.0.2"
    assert address("127.0.0.1", "198.51.100.7", trusted=()) == "127.0.0.1"


def test_a_peer_without_an_ip_address_sends_no_x_forwarded_for():
    assert address(None, "198.51.100.7") is None
    metadata = dict(metadata_of(request(None, "198.51.100.7"), "r1", INGRESS))
    assert "x-forwarded-for" not in metadata


def test_the_metadata_carries_one_address_replacing_what_the_client_wrote():
    metadata = metadata_of(request("203.0.113.5", "198.51.100.7, 192.0.2.1"), "r1", INGRESS)
    assert [value for key, value in metadata if key == "x-forwarded-for"] == ["203.0.113.5"]


def test_http_trusted_proxies_are_read_from_the_environment():
    assert GatewaySettings.from_env({}).http_trusted_proxies == ()
    settings = GatewaySettings.from_env({"AUTHSVC_HTTP_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.1 ,fd00::/8"})
    assert [str(n) for n in settings.http_trusted_proxies] == ["10.0.0.0/8", "192.168.1.1/32", "fd00::/8"]
    with pytest.raises(SettingsError, match="AUTHSVC_HTTP_TRUSTED_PROXIES"):
        GatewaySettings.from_env({"AUTHSVC_HTTP_TRUSTED_PROXIES": "the ingress"})


def test_the_gateway_secret_file_follows_the_data_dir_unless_named():
    assert GatewaySettings.from_env({}).gateway_secret_file == Path("data/gateway.secret")
    assert GatewaySettings.from_env({"AUTHSVC_DATA_DIR": "/srv/auth"}).gateway_secret_file == Path(
        "/srv/auth/gateway.secret"
    )
    named = {"AUTHSVC_DATA_DIR": "/srv/auth", "AUTHSVC_GATEWAY_SECRET_FILE": "/run/secrets/gw"}
    assert GatewaySettings.from_env(named).gateway_secret_file == Path("/run/secrets/gw")
    described = GatewaySettings.from_env(named).describe()
    assert "AUTHSVC_GATEWAY_SECRET_FILE=/run/secrets/gw" in described
