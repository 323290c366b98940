"""Routes come from the contract's google.api.http rules and method options, never from gateway code."""

from __future__ import annotations

import pytest
from authsvc_proto.v1 import auth_pb2

from authsvc.gateway.routes import RouteError, _router_path, service_routes
from tests.gateway.probe import probe_service


def test_every_rpc_of_the_service_has_exactly_its_annotated_route() -> None:
    routes = {route.rpc_name: route for route in service_routes()}

    assert {name: (r.http_method, r.template, r.body) for name, r in routes.items()} == {
        "Register": ("POST", "/api/v1/auth/register", "*"),
        "Login": ("POST", "/api/v1/auth/login", "*"),
        "Refresh": ("POST", "/api/v1/auth/refresh", "*"),
        "Logout": ("POST", "/api/v1/auth/logout", "*"),
        "LogoutAll": ("POST", "/api/v1/auth/logout-all", "*"),
        "ListSessions": ("GET", "/api/v1/auth/sessions", ""),
        "RevokeSession": ("DELETE", "/api/v1/auth/sessions/{session_id}", ""),
        "GetJwks": ("GET", "/.well-known/jwks.json", ""),
        "GetProfile": ("GET", "/api/v1/users/me", ""),
        "UpdateProfile": ("PUT", "/api/v1/users/me", "*"),
        "ChangePassword": ("POST", "/api/v1/auth/change-password", "*"),
        "ForgotPassword": ("POST", "/api/v1/auth/forgot-password", "*"),
        "ResetPassword": ("POST", "/api/v1/auth/reset-password", "*"),
        "RequestEmailVerification": ("POST", "/api/v1/auth/verify-email/request", "*"),
        "VerifyEmail": ("POST", "/api/v1/auth/verify-email", "*"),
        "DeleteAccount": ("DELETE", "/api/v1/users/me", "*"),
    }


def test_routes_carry_the_grpc_method_and_message_classes_from_the_descriptor() -> None:
    login = next(route for route in service_routes() if route.rpc_name == "Login")

    assert login.grpc_method == "/authsvc.v1.AuthService/Login"
    assert login.request_class.DESCRIPTOR.full_name == "authsvc.v1.LoginRequest"
    assert login.response_class.DESCRIPTOR.full_name == "authsvc.v1.TokenPair"


def test_method_options_give_the_success_status_and_the_bearer_rule() -> None:
    routes = {route.rpc_name: route for route in service_routes()}

    assert {name: route.success_status for name, route in routes.items()} == {
        "Register": 201,
        "Login": 200,
        "Refresh": 200,
        "Logout": 200,
        "LogoutAll": 200,
        "ListSessions": 200,
        "RevokeSession": 200,
        "GetJwks": 200,
        "GetProfile": 200,
        "UpdateProfile": 200,
        "ChangePassword": 200,
        "ForgotPassword": 202,
        "ResetPassword": 200,
        "RequestEmailVerification": 202,
        "VerifyEmail": 200,
        "DeleteAccount": 200,
    }
    assert [name for name, route in routes.items() if route.requires_bearer] == [
        "LogoutAll",
        "ListSessions",
        "RevokeSession",
        "GetProfile",
        "UpdateProfile",
        "ChangePassword",
        "RequestEmailVerification",
        "DeleteAccount",
    ]


def test_an_internal_rpc_gets_a_route_only_when_asked() -> None:
    # Introspect and SetUserDisabled are marked (authsvc.v1.internal): for internal services and
    # operators, not for HTTP clients.
    public = {route.rpc_name for route in service_routes()}
    assert "Introspect" not in public and "SetUserDisabled" not in public
    internal = {r.rpc_name: r for r in service_routes(include_internal=True)}
    assert (internal["Introspect"].http_method, internal["Introspect"].template) == (
        "POST",
        "/api/v1/auth/introspect",
    )
    disable = internal["SetUserDisabled"]
    assert (disable.http_method, disable.template, disable.requires_bearer) == (
        "POST",
        "/api/v1/admin/users/disabled",
        True,
    )


@pytest.mark.parametrize(
    ("template", "router_path", "variables"),
    [
        ("/api/v1/auth/login", "/api/v1/auth/login", []),
        ("/v1/sessions/{session_id}", "/v1/sessions/{session_id}", [("session_id", ("session_id",))]),
        ("/v1/users/{user.id}", "/v1/users/{user__id}", [("user__id", ("user", "id"))]),
        ("/v1/{name=sessions/*}", "/v1/{name:sessions/[^/]+}", [("name", ("name",))]),
        ("/v1/{path=files/**}", "/v1/{path:files/.+}", [("path", ("path",))]),
        ("/v1/sessions/{id}:revoke", "/v1/sessions/{id}:revoke", [("id", ("id",))]),
        ("/v1/*/x", "/v1/{_wild1:[^/]+}/x", []),
    ],
)
def test_path_templates_become_router_paths(
    template: str, router_path: str, variables: list[tuple[str, tuple[str, ...]]]
) -> None:
    path, found = _router_path(template)

    assert path == router_path
    assert [(variable.name, variable.field_path) for variable in found] == variables


@pytest.mark.parametrize("template", ["/v1/{unclosed", "/v1/a{b}c", "/v1/{a=b{c}}"])
def test_a_malformed_template_is_refused_at_start_up(template: str) -> None:
    with pytest.raises(RouteError):
        _router_path(template)


def test_additional_bindings_add_routes_and_an_unknown_field_is_refused() -> None:
    service = probe_service('get: "/v1/req/{id}" additional_bindings { post: "/v1/req" body: "*" }')
    routes = service_routes(service)
    assert [(r.http_method, r.router_path, r.body) for r in routes] == [
        ("GET", "/v1/req/{id}", ""),
        ("POST", "/v1/req", "*"),
    ]

    with pytest.raises(RouteError):
        service_routes(probe_service('get: "/v1/req/{nope}"'))


def test_the_default_service_is_authsvc_v1_auth_service() -> None:
    service = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
    assert service_routes() == service_routes(service)
