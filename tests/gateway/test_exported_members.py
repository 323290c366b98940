"""The gateway package's public names, pinned (as httpx pins its own)."""

from __future__ import annotations

import authsvc.gateway


def test_public_names_are_exactly_these() -> None:
    assert sorted(authsvc.gateway.__all__) == [
        "GatewayError",
        "GatewaySettings",
        "HTTP_STATUS_BY_CODE",
        "Route",
        "RunningGateway",
        "build_app",
        "build_document",
        "http_status",
        "serve",
        "service_routes",
        "start_gateway",
    ]
    for name in authsvc.gateway.__all__:
        assert hasattr(authsvc.gateway, name)
