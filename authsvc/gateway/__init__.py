"""The REST sidecar: HTTP/JSON routes transcoded to authsvc.v1 gRPC calls, driven by the proto alone.

It reaches the server over gRPC like any client, so it imports only the contract package (`authsvc_proto`)
and `authsvc.gateway_secret`, the secret file both processes read so that the server believes the client
address the gateway forwards.
"""

from authsvc.gateway.app import build_app
from authsvc.gateway.errors import HTTP_STATUS_BY_CODE, GatewayError, http_status
from authsvc.gateway.openapi import build_document
from authsvc.gateway.routes import Route, service_routes
from authsvc.gateway.serving import RunningGateway, serve, start_gateway
from authsvc.gateway.settings import GatewaySettings

__all__ = [
    "HTTP_STATUS_BY_CODE",
    "GatewayError",
    "GatewaySettings",
    "Route",
    "RunningGateway",
    "build_app",
    "build_document",
    "http_status",
    "serve",
    "service_routes",
    "start_gateway",
]
