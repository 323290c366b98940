"""One spelling per client IP address, shared by the server and the REST gateway.

Both read addresses that clients and proxies wrote (a forwarded header, a peer string) and must agree on
what one is, so the parsing lives here once. Like gateway_secret.py, this module imports nothing of
authsvc: the gateway may not import the server's layers (pyproject's import-linter contracts).
"""

from __future__ import annotations

import ipaddress

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# The longest address text worth parsing once a zone id is dropped (the longest IPv6 spelling, with an
# embedded IPv4 address, brackets and a port, is under 64); longer input is not an address.
MAX_ADDRESS_INPUT = 64


def parse_address(text: str) -> IpAddress | None:
    """The IP address `text` names, or None when it names none.

    Surrounding blanks, `[...]` brackets and a port after them (`[::1]:443`, `203.0.113.9:443`) and an
    IPv6 zone id (`fe80::1%eth0`, of any length) are dropped; an IPv4-mapped IPv6 address is its IPv4
    address. `str()` of the result is compressed, lower case, at most 39 characters.
    """
    candidate = text.strip()
    if candidate.startswith("["):
        candidate, bracket, _ = candidate[1:].partition("]")
        if not bracket:
            return None
    elif candidate.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has at least two colons
        candidate = candidate.partition(":")[0]
    if ":" in candidate:  # only IPv6 has zone ids
        candidate = candidate.partition("%")[0]
    if not candidate or len(candidate) > MAX_ADDRESS_INPUT:
        return None
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
