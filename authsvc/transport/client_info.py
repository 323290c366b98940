"""What the transport learns about a caller from gRPC metadata and the peer address."""

from __future__ import annotations

import functools
import ipaddress
import logging
import urllib.parse
from collections.abc import Iterable, Sequence

from authsvc.addresses import MAX_ADDRESS_INPUT, parse_address
from authsvc.domain.audit import ClientInfo

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Metadata = Iterable[tuple[str, str | bytes]]
GATEWAY_USER_AGENT = "grpcgateway-user-agent"  # the REST sidecar forwards HTTP's User-Agent here
FORWARDED_FOR = "x-forwarded-for"
REQUEST_ID = "x-request-id"
MAX_HEADER_VALUE = 512
MAX_REQUEST_ID = 128
# Peers are parsed once per connection, not once per call: a gRPC connection carries many calls, and
# parsing an address costs more than the rest of a call's client info.
PEERS_REMEMBERED = 4096


def metadata_value(metadata: Metadata | None, key: str) -> str | None:
    """The last text value of `key` in the invocation metadata."""
    found: str | None = None
    for name, value in metadata or ():
        if name == key and isinstance(value, str):
            found = value
    return found


def normalise_address(text: str) -> str | None:
    """One spelling per IP address (authsvc/addresses.py), or None when `text` is not one: every spelling
    of one address is one throttling key and one stored value (at most 39 characters, well within
    sessions.ip_address)."""
    address = parse_address(text)
    return None if address is None else str(address)


@functools.lru_cache(maxsize=PEERS_REMEMBERED)
def peer_ip(peer: str) -> str | None:
    """The IP address in a gRPC peer string, normalised; None for other kinds (a Unix socket).

    grpcio writes `ipv4:1.2.3.4:5` and `ipv6:%5B::1%5D:5` (the brackets, and a zone's `%`, URL-encoded).
    """
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return None
    host = urllib.parse.unquote(rest).rpartition(":")[0]  # without the port
    return normalise_address(host)


def client_address(
    peer: str, forwarded_for: str | None, trusted: Sequence[Network], *, from_gateway: bool = False
) -> str | None:
    """The peer, or the x-forwarded-for entry that the gateway (`from_gateway`: the caller proved it is
    authsvc's REST gateway, gateway_trust.py) or a peer in `trusted` added (the last one), never a value
    any other client wrote itself; both normalised (`normalise_address`). An entry that is not an IP
    address is ignored, with a log line, and the peer used."""
    direct = peer_ip(peer)
    return _forwarded_or(direct, forwarded_for) if _believed(direct, trusted, from_gateway) else direct


def _forwarded_or(direct: str | None, forwarded_for: str | None) -> str | None:
    """The last entry of a believed x-forwarded-for, normalised; `direct` when there is none usable."""
    if not forwarded_for:
        return direct
    last = forwarded_for.rsplit(",", 1)[-1]
    forwarded = normalise_address(last)
    if forwarded is None:
        log.info(
            "x-forwarded-for entry is not an IP address: using the peer's",
            extra={"forwarded_for": last.strip()[:MAX_ADDRESS_INPUT], "peer": direct},
        )
        return direct
    return forwarded


def _believed(direct: str | None, trusted: Sequence[Network], from_gateway: bool) -> bool:
    """Whether the caller's forwarded address and user agent are believed: the gateway's, or a trusted
    proxy's; a direct caller is known by its own peer address, whatever it writes."""
    return from_gateway or (direct is not None and _is_trusted(direct, trusted))


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    if not trusted:
        return False
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
    raw = raw[:MAX_REQUEST_ID]
    if raw.isascii() and raw.isprintable():  # nearly always: skip the loop over characters
        return raw
    cleaned = "".join(char for char in raw if char.isascii() and char.isprintable())
    return cleaned or None


def client_info(
    metadata: Metadata | None, peer: str, trusted: Sequence[Network], *, from_gateway: bool = False
) -> ClientInfo:
    direct = peer_ip(peer)
    believed = _believed(direct, trusted, from_gateway)
    forwarded_agent = metadata_value(metadata, GATEWAY_USER_AGENT) if believed else None
    user_agent = forwarded_agent or metadata_value(metadata, "user-agent")
    address = _forwarded_or(direct, metadata_value(metadata, FORWARDED_FOR)) if believed else direct
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
