"""`/.well-known/openid-configuration`: the metadata a verifier's library reads to configure itself.

The fields of OpenID Connect Discovery 1.0 and RFC 8414 that apply to authsvc: the issuer, where the
JWKS is, the routes that issue, revoke and introspect tokens (Introspect only where this gateway routes
it), and the one signing algorithm. authsvc has no authorization endpoint and issues no ID tokens, so
the fields about those are left out. The endpoints take authsvc's JSON bodies (docs/api.md), not the
form posts of RFC 6749.

URLs are absolute: from AUTHSVC_PUBLIC_URL when set, else from the request's own scheme and host.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from authsvc.gateway.routes import Route

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"
# The document changes only with the gateway's configuration; an hour of caching is harmless.
DISCOVERY_CACHE_CONTROL = "public, max-age=3600"
_ENDPOINTS = {
    "Login": "token_endpoint",
    "Logout": "revocation_endpoint",
    "Introspect": "introspection_endpoint",
}


def discovery_document(issuer: str, base_url: str, routes: Sequence[Route]) -> dict[str, Any]:
    """The metadata for `issuer`, with every URL under `base_url` (no trailing slash)."""
    document: dict[str, Any] = {"issuer": issuer, "jwks_uri": base_url + JWKS_PATH}
    for route in routes:
        name = _ENDPOINTS.get(route.rpc_name)
        if name is not None and name not in document:
            document[name] = base_url + route.template
    document.update(
        {
            "grant_types_supported": ["password", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none"],
            "subject_types_supported": ["public"],
            # Access tokens (RFC 9068) are signed with Ed25519; libraries read the ID-token field.
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "revocation_endpoint_auth_methods_supported": ["none"],
        }
    )
    if "introspection_endpoint" in document:
        document["introspection_endpoint_auth_methods_supported"] = ["bearer"]
    return document


def base_url_of(request: web.Request, public_url: str) -> str:
    """AUTHSVC_PUBLIC_URL without its trailing slash, else this request's origin."""
    if public_url:
        return public_url.rstrip("/")
    return str(request.url.origin())
