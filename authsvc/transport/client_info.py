"""What the transport learns about a caller from gRPC metadata and the peer address."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from authsvc.domain.audit import ClientInfo

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Metadata = Iterable[tuple[str, str | bytes]]
GATEWAY_USER_AGENT = "grpcgateway-user-agent"  # the REST sidecar forwards HTTP's User-Agent here
FORWARDED_FOR = "x-forwarded-for"
REQUEST_ID = "x-request-id"
MAX_HEADER_VALUE = 512
MAX_REQUEST_ID = 128


def metadata_value(metadata: Metadata | None, key: str) -> str | None:
    """The last text value of `key` in the invocation metadata."""
    found: str | None = None
    for name, value in metadata or ():
        if name == key and isinstance(value, str):
            found = value
    return found


def peer_ip(peer: str) -> str | None:
    """The IP address in a gRPC peer string (`ipv4:1.2.3.4:5`, `ipv6:[::1]:5`); None for other kinds."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return None


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str | None:
    """The peer, or the x-forwarded-for entry a trusted proxy added (the last one), never a value the
    client wrote itself."""
    direct = peer_ip(peer)
    if direct is None or not forwarded_for or not _is_trusted(direct, trusted):
        return direct
    last = forwarded_for.split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return direct


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def request_id(metadata: Metadata | None) -> str | None:
    """The caller's `x-request-id`, cut to a sane length and to printable ASCII so it cannot forge log
    lines; None when absent or empty."""
    raw = metadata_value(metadata, REQUEST_ID)
    if not raw:
        return None
    cleaned = "".join(char for char in raw[:MAX_REQUEST_ID] if char.isascii() and char.isprintable())
    return cleaned or None


def client_info(metadata: Metadata | None, peer: str, trusted: Sequence[Network]) -> ClientInfo:
    user_agent = metadata_value(metadata, GATEWAY_USER_AGENT) or metadata_value(metadata, "user-agent")
    address = client_address(peer, metadata_value(metadata, FORWARDED_FOR), trusted)
    return ClientInfo(
        user_agent=user_agent[:MAX_HEADER_VALUE] if user_agent else None,
        ip_address=address,
        request_id=request_id(metadata),
    )


def bearer_token(metadata: Metadata | None) -> str | None:
    """The token of an `authorization: Bearer <token>` entry; "" when the header is there but malformed,
    None when it is absent."""
    value = metadata_value(metadata, "authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return token.strip()
