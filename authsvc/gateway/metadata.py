"""HTTP request -> gRPC metadata, and the request id that travels both ways.

- `Authorization` -> `authorization`, unchanged.
- `User-Agent` -> `grpcgateway-user-agent`: grpcio replaces a per-call `user-agent` with its own, so the
  server reads the client's from this key (the name grpc-gateway uses).
- The client's address is sent as `x-forwarded-for`, one address that replaces whatever the client wrote:
  the HTTP peer's, or, when the peer is a trusted proxy (AUTHSVC_HTTP_TRUSTED_PROXIES: a load balancer,
  an ingress), the nearest X-Forwarded-For entry that is not one, walking from the right. The server
  believes it because the gateway secret travels with it (upstream.py, authsvc/gateway_secret.py).
- `X-Request-Id` (generated when absent or unusable) -> `x-request-id`, echoed on the response.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Sequence

from aiohttp import web

from authsvc.gateway.settings import Network

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_KEY = "x-request-id"
USER_AGENT_KEY = "grpcgateway-user-agent"
FORWARDED_FOR_KEY = "x-forwarded-for"
AUTHORIZATION_KEY = "authorization"

# gRPC accepts printable ASCII in text metadata values (PROTOCOL-HTTP2.md, "ASCII-Value").
_METADATA_VALUE = re.compile(r"[\x20-\x7e]*")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# The longest address text worth parsing (an IPv6 address with an embedded IPv4 one, brackets and a port).
_MAX_ADDRESS_TEXT = 64

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def request_id_of(request: web.Request) -> str:
    """The client's X-Request-Id when it is a short token, else a fresh uuid4 hex."""
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    return offered if _REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex


def metadata_of(
    request: web.Request, request_id: str, trusted_proxies: Sequence[Network] = ()
) -> list[tuple[str, str]]:
    """The metadata for the call that serves `request`. Values gRPC cannot carry are dropped."""
    metadata = [(REQUEST_ID_KEY, request_id)]
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        # An unsendable value still reaches the server, as an empty one it rejects like any bad token.
        metadata.append((AUTHORIZATION_KEY, authorization if _sendable(authorization) else ""))
    user_agent = request.headers.get("User-Agent")
    if user_agent and _sendable(user_agent):
        metadata.append((USER_AGENT_KEY, user_agent))
    address = client_address(request, trusted_proxies)
    if address is not None:
        metadata.append((FORWARDED_FOR_KEY, str(address)))
    return metadata


def client_address(request: web.Request, trusted_proxies: Sequence[Network] = ()) -> IpAddress | None:
    """Who sent `request`: the HTTP peer, unless it is in `trusted_proxies`; then the X-Forwarded-For
    entries (every such header, in order) are walked from the right past trusted proxies, and the first
    address outside them is the client. An entry that is not an IP address stops the walk at the proxy
    that wrote it; when every entry is a trusted proxy, the leftmost is the client. None when the peer
    has no IP address (a Unix socket)."""
    peer = _parse_address(_peer_text(request))
    if peer is None or not _is_trusted(peer, trusted_proxies):
        return peer
    client = peer
    for value in reversed(request.headers.getall("X-Forwarded-For", ())):
        for hop in reversed(value.split(",")):
            if not hop.strip():
                continue
            address = _parse_address(hop)
            if address is None:
                return client
            client = address
            if not _is_trusted(address, trusted_proxies):
                return client
    return client


def _peer_text(request: web.Request) -> str:
    transport = request.transport
    peername = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return request.remote or ""


def _parse_address(text: str) -> IpAddress | None:
    """An IP address from `203.0.113.9`, `203.0.113.9:443`, `2001:db8::1`, `[2001:db8::1]:443` or
    `fe80::1%eth0`; an IPv4-mapped IPv6 address as its IPv4 address. None for anything else."""
    candidate = text.strip()
    if len(candidate) > _MAX_ADDRESS_TEXT:
        return None
    if candidate.startswith("["):
        candidate, bracket, _ = candidate[1:].partition("]")
        if not bracket:
            return None
    elif candidate.count(":") == 1:  # IPv4 with a port
        candidate = candidate.partition(":")[0]
    candidate = candidate.partition("%")[0]  # an IPv6 zone id
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IpAddress, trusted_proxies: Sequence[Network]) -> bool:
    return any(address in network for network in trusted_proxies)


def _sendable(value: str) -> bool:
    return _METADATA_VALUE.fullmatch(value) is not None
