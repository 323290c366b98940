"""HTTP request -> gRPC metadata, and the request id that travels both ways.

- `Authorization` -> `authorization`, unchanged.
- `User-Agent` -> `grpcgateway-user-agent`: grpcio replaces a per-call `user-agent` with its own, so the
  server reads the client's from this key (the name grpc-gateway uses).
- The peer address is appended to `x-forwarded-for` (the de facto header, as proxies extend it), so the
  server, which trusts this gateway as a proxy, sees the real client.
- `X-Request-Id` (generated when absent or unusable) -> `x-request-id`, echoed on the response.
"""

from __future__ import annotations

import re
import uuid

from aiohttp import web

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_KEY = "x-request-id"
USER_AGENT_KEY = "grpcgateway-user-agent"
FORWARDED_FOR_KEY = "x-forwarded-for"
AUTHORIZATION_KEY = "authorization"

# gRPC accepts printable ASCII in text metadata values (PROTOCOL-HTTP2.md, "ASCII-Value").
_METADATA_VALUE = re.compile(r"[\x20-\x7e]*")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_MAX_FORWARDED_HOPS = 16


def request_id_of(request: web.Request) -> str:
    """The client's X-Request-Id when it is a short token, else a fresh uuid4 hex."""
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    return offered if _REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex


def metadata_of(request: web.Request, request_id: str) -> list[tuple[str, str]]:
    """The metadata for the call that serves `request`. Values gRPC cannot carry are dropped."""
    metadata = [(REQUEST_ID_KEY, request_id)]
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        # An unsendable value still reaches the server, as an empty one it rejects like any bad token.
        metadata.append((AUTHORIZATION_KEY, authorization if _sendable(authorization) else ""))
    user_agent = request.headers.get("User-Agent")
    if user_agent and _sendable(user_agent):
        metadata.append((USER_AGENT_KEY, user_agent))
    forwarded = _forwarded_for(request)
    if forwarded:
        metadata.append((FORWARDED_FOR_KEY, forwarded))
    return metadata


def _forwarded_for(request: web.Request) -> str:
    peer = _peer_ip(request)
    hops = [
        hop.strip()
        for value in request.headers.getall("X-Forwarded-For", ())
        if _sendable(value)
        for hop in value.split(",")
        if hop.strip()
    ]
    # Only the nearest hops matter to a server that trusts its proxies; a long forged chain is cut.
    return ", ".join([*hops[-_MAX_FORWARDED_HOPS:], *([peer] if peer else [])])


def _peer_ip(request: web.Request) -> str:
    transport = request.transport
    peername = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return request.remote or ""


def _sendable(value: str) -> bool:
    return _METADATA_VALUE.fullmatch(value) is not None
