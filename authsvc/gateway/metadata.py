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

import re
import uuid
from collections.abc import Sequence
from functools import lru_cache

from aiohttp import web

from authsvc.addresses import IpAddress, parse_address
from authsvc.gateway.settings import Network

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_KEY = "x-request-id"
USER_AGENT_KEY = "grpcgateway-user-agent"
FORWARDED_FOR_KEY = "x-forwarded-for"
AUTHORIZATION_KEY = "authorization"

# gRPC accepts printable ASCII in text metadata values (PROTOCOL-HTTP2.md, "ASCII-Value").
_METADATA_VALUE = re.compile(r"[\x20-\x7e]*")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


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
    peer = _parse_peer(_peer_text(request))
    if peer is None or not _is_trusted(peer, trusted_proxies):
        return peer
    client = peer
    for value in reversed(request.headers.getall("X-Forwarded-For", ())):
        for hop in reversed(value.split(",")):
            if not hop.strip():
                continue
            address = parse_address(hop)
            if address is None:
                return client
            client = address
            if not _is_trusted(address, trusted_proxies):
                return client
    return client


# A gateway sees few distinct peers (its clients, a load balancer), each on every request it sends.
_parse_peer = lru_cache(maxsize=1024)(parse_address)


def _peer_text(request: web.Request) -> str:
    transport = request.transport
    peername = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return request.remote or ""


def _is_trusted(address: IpAddress, trusted_proxies: Sequence[Network]) -> bool:
    return any(address in network for network in trusted_proxies)


def _sendable(value: str) -> bool:
    return _METADATA_VALUE.fullmatch(value) is not None
