"""GET /api/v1/openapi.json: an OpenAPI 3.1 document generated from the same descriptors as the routes."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from authsvc_proto.errors import ErrorReason
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor
from openapi_spec_validator import validate

from authsvc.domain.account import MAX_DISPLAY_NAME
from authsvc.domain.emails import MAX_EMAIL_LENGTH
from authsvc.domain.passwords import MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARACTERS
from authsvc.domain.tokens import MAX_TOKEN_LENGTH
from authsvc.gateway import build_document, service_routes
from authsvc.gateway.openapi import FIELD_SCHEMAS
from tests.gateway.probe import probe_service


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(service_routes())


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_route_has_its_operation(document: dict[str, Any]) -> None:
    operations = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if path != "/healthz"
    }
    assert operations == {(route.http_method, route.template) for route in service_routes()}


def test_register_answers_201_the_mail_requests_202_and_the_others_200(document: dict[str, Any]) -> None:
    successes = {
        (method.upper(), path): [status for status in operation["responses"] if status.startswith("2")]
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert successes.pop(("POST", "/api/v1/auth/register")) == ["201"]
    assert successes.pop(("POST", "/api/v1/auth/forgot-password")) == ["202"]
    assert successes.pop(("POST", "/api/v1/auth/verify-email/request")) == ["202"]
    assert set(map(tuple, successes.values())) == {("200",)}


def test_bearer_security_is_declared_only_where_the_contract_requires_it(document: dict[str, Any]) -> None:
    secured = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if "security" in operation
    }
    assert secured == {
        ("POST", "/api/v1/auth/logout-all"),
        ("GET", "/api/v1/auth/sessions"),
        ("DELETE", "/api/v1/auth/sessions/{session_id}"),
        ("GET", "/api/v1/users/me"),
        ("PUT", "/api/v1/users/me"),
        ("DELETE", "/api/v1/users/me"),
        ("POST", "/api/v1/auth/change-password"),
        ("POST", "/api/v1/auth/verify-email/request"),
    }
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }


def test_message_schemas_follow_the_proto3_json_mapping(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    token_pair = schemas["authsvc.v1.TokenPair"]
    assert token_pair["properties"]["expires_in"] == {"type": "integer", "format": "int32"}
    assert token_pair["properties"]["access_token"] == {"type": "string"}
    # Answers print every field, so every field is required in a response schema.
    assert set(token_pair["required"]) == set(token_pair["properties"])
    assert schemas["authsvc.v1.LogoutAllResponse"]["required"] == ["message", "revoked_sessions"]


def test_errors_have_the_one_error_schema_narrowed_to_the_words_of_each_status(
    document: dict[str, Any],
) -> None:
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["detail", "code", "reason"]
    login = document["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert login["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error",
        "properties": {"code": {"enum": ["UNAUTHENTICATED"]}, "reason": {"enum": ["INVALID_CREDENTIALS"]}},
    }
    assert "WWW-Authenticate" in login["401"]["headers"]
    assert "Retry-After" in login["429"]["headers"]
    assert _reasons(login, "429") == {"THROTTLED", "RESOURCE_EXHAUSTED"}


def _reasons(responses: dict[str, Any], status: str) -> set[str]:
    return set(responses[status]["content"]["application/json"]["schema"]["properties"]["reason"]["enum"])


def _codes(responses: dict[str, Any], status: str) -> set[str]:
    return set(responses[status]["content"]["application/json"]["schema"]["properties"]["code"]["enum"])


def test_each_route_documents_the_errors_it_can_give_and_no_other_status() -> None:
    document = build_document(service_routes(include_internal=True))
    validate(document)
    paths = document["paths"]
    register = paths["/api/v1/auth/register"]["post"]["responses"]
    assert _reasons(register, "409") == {"EMAIL_TAKEN"}
    assert {"INVALID_EMAIL", "WEAK_PASSWORD", "PASSWORD_TOO_LONG", "INVALID_JSON"} <= _reasons(
        register, "400"
    )
    assert "401" not in register and "403" not in register and "404" not in register

    refresh = paths["/api/v1/auth/refresh"]["post"]["responses"]
    assert _reasons(refresh, "401") == {
        "TOKEN_INVALID",
        "TOKEN_EXPIRED",
        "SESSION_REVOKED",
        "REFRESH_TOKEN_REUSED",
    }
    assert "TOKEN_TOO_LONG" in _reasons(refresh, "400")

    revoke = paths["/api/v1/auth/sessions/{session_id}"]["delete"]["responses"]
    assert _reasons(revoke, "404") == {"SESSION_NOT_FOUND"}
    # The gateway's own 403 for a request with no Authorization header at all.
    assert (_codes(revoke, "403"), _reasons(revoke, "403")) == ({"UNAUTHENTICATED"}, {"NOT_AUTHENTICATED"})
    assert "413" not in revoke and "415" not in revoke  # no body to refuse

    introspect = paths["/api/v1/auth/introspect"]["post"]["responses"]
    assert _codes(introspect, "403") == {"PERMISSION_DENIED"}
    assert _reasons(introspect, "403") == {"INTROSPECTION_LOOPBACK_ONLY"}

    jwks = paths["/.well-known/jwks.json"]["get"]["responses"]
    assert set(jwks) == {"200", "400", "429", "500", "501", "503", "504", "default"}
    assert _reasons(jwks, "503") == {"SERVICE_UNAVAILABLE"}  # no store behind the keys
    assert _codes(jwks, "500") == {"INTERNAL", "UNKNOWN", "DATA_LOSS"}


def test_every_documented_reason_is_a_word_of_the_enum_or_a_grpc_code_name() -> None:
    document = build_document(service_routes(include_internal=True))
    documented = {
        reason
        for item in document["paths"].values()
        for operation in item.values()
        for status, response in operation["responses"].items()
        if status != "default" and not status.startswith("2")
        for reason in _reasons(operation["responses"], status)
    }
    words = set(ErrorReason.keys()) | {code.name for code in grpc.StatusCode}
    assert documented and documented <= words, documented - words


def test_request_fields_the_contract_marks_required_are_required() -> None:
    document = build_document(service_routes(include_internal=True))
    schemas = document["components"]["schemas"]
    assert schemas["authsvc.v1.RegisterRequest"]["required"] == ["email", "password"]
    assert schemas["authsvc.v1.LoginRequest"]["required"] == ["email", "password"]
    assert schemas["authsvc.v1.RefreshRequest"]["required"] == ["refresh_token"]
    assert schemas["authsvc.v1.LogoutRequest"]["required"] == ["refresh_token"]
    # An empty or junk token is an answer ({"active": false}), so nothing is required.
    assert "required" not in schemas["authsvc.v1.IntrospectRequest"]
    # proto3 JSON cannot tell "" from absent, so a required string cannot be empty either.
    assert schemas["authsvc.v1.RefreshRequest"]["properties"]["refresh_token"]["minLength"] == 1
    revoke = document["paths"]["/api/v1/auth/sessions/{session_id}"]["delete"]
    assert revoke["parameters"] == [
        {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    ]


def test_a_body_is_required_only_where_the_empty_message_would_be_refused() -> None:
    paths = build_document(service_routes(include_internal=True))["paths"]
    required = {
        (method.upper(), path): operation["requestBody"]["required"]
        for path, item in paths.items()
        for method, operation in item.items()
        if "requestBody" in operation
    }
    assert required == {
        ("POST", "/api/v1/auth/register"): True,
        ("POST", "/api/v1/auth/login"): True,
        ("POST", "/api/v1/auth/refresh"): True,
        ("POST", "/api/v1/auth/logout"): True,
        ("POST", "/api/v1/auth/logout-all"): False,
        ("POST", "/api/v1/auth/introspect"): False,
        ("PUT", "/api/v1/users/me"): False,  # {} clears the display name
        ("DELETE", "/api/v1/users/me"): True,
        ("POST", "/api/v1/auth/change-password"): True,
        ("POST", "/api/v1/auth/forgot-password"): True,
        ("POST", "/api/v1/auth/reset-password"): True,
        ("POST", "/api/v1/auth/verify-email/request"): False,
        ("POST", "/api/v1/auth/verify-email"): True,
        ("POST", "/api/v1/admin/users/disabled"): True,
    }


def test_limits_and_formats_come_from_the_one_table(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    register = schemas["authsvc.v1.RegisterRequest"]["properties"]
    assert register["email"]["format"] == "idn-email"
    assert register["email"]["maxLength"] == 254
    assert (register["password"]["minLength"], register["password"]["maxLength"]) == (8, 72)
    assert "UTF-8" in register["password"]["description"]
    login = schemas["authsvc.v1.LoginRequest"]["properties"]
    assert (login["password"]["minLength"], login["password"]["maxLength"]) == (1, 72)
    assert schemas["authsvc.v1.RefreshRequest"]["properties"]["refresh_token"]["maxLength"] == 4096
    assert schemas["authsvc.v1.RegisterResponse"]["properties"]["email"]["format"] == "idn-email"
    assert schemas["authsvc.v1.UpdateProfileRequest"]["properties"]["display_name"]["maxLength"] == 100
    change = schemas["authsvc.v1.ChangePasswordRequest"]["properties"]
    assert (change["current_password"]["minLength"], change["current_password"]["maxLength"]) == (1, 72)
    assert (change["new_password"]["minLength"], change["new_password"]["maxLength"]) == (8, 72)
    reset = schemas["authsvc.v1.ResetPasswordRequest"]["properties"]
    assert (reset["token"]["minLength"], reset["token"]["maxLength"]) == (1, 4096)
    assert (reset["new_password"]["minLength"], reset["new_password"]["maxLength"]) == (8, 72)
    assert schemas["authsvc.v1.VerifyEmailRequest"]["properties"]["token"]["maxLength"] == 4096
    delete = schemas["authsvc.v1.DeleteAccountRequest"]["properties"]["password"]
    assert (delete["minLength"], delete["maxLength"]) == (1, 72)
    forgot = schemas["authsvc.v1.ForgotPasswordRequest"]["properties"]["email"]
    assert (forgot["format"], forgot["maxLength"]) == ("idn-email", 254)
    assert schemas["authsvc.v1.Profile"]["properties"]["email"]["format"] == "idn-email"


@pytest.mark.parametrize("name", sorted(FIELD_SCHEMAS))
def test_every_entry_of_the_limits_table_names_a_string_field_of_the_contract(name: str) -> None:
    field = descriptor_pool.Default().FindFieldByName(name)
    assert field.type == FieldDescriptor.TYPE_STRING


def test_the_limits_table_says_what_the_domain_enforces() -> None:
    for email in ("RegisterRequest", "LoginRequest", "ForgotPasswordRequest", "SetUserDisabledRequest"):
        assert FIELD_SCHEMAS[f"authsvc.v1.{email}.email"]["maxLength"] == MAX_EMAIL_LENGTH
    new_passwords = (
        "RegisterRequest.password",
        "ChangePasswordRequest.new_password",
        "ResetPasswordRequest.new_password",
    )
    for new in new_passwords:
        assert FIELD_SCHEMAS[f"authsvc.v1.{new}"]["minLength"] == MIN_PASSWORD_CHARACTERS
    passwords = (
        *new_passwords,
        "LoginRequest.password",
        "ChangePasswordRequest.current_password",
        "DeleteAccountRequest.password",
    )
    for password in passwords:
        assert FIELD_SCHEMAS[f"authsvc.v1.{password}"]["maxLength"] == MAX_PASSWORD_BYTES
    tokens = (
        "RefreshRequest.refresh_token",
        "LogoutRequest.refresh_token",
        "ResetPasswordRequest.token",
        "VerifyEmailRequest.token",
    )
    for token in tokens:
        assert FIELD_SCHEMAS[f"authsvc.v1.{token}"]["maxLength"] == MAX_TOKEN_LENGTH
    assert FIELD_SCHEMAS["authsvc.v1.UpdateProfileRequest.display_name"]["maxLength"] == MAX_DISPLAY_NAME


def test_path_variables_and_query_parameters_are_documented_and_the_document_stays_valid() -> None:
    service = probe_service('get: "/v1/things/{id}"', 'post: "/v1/things/{id}" body: "page_info"')
    document = build_document(service_routes(service))
    validate(document)
    get = document["paths"]["/v1/things/{id}"]["get"]
    assert [(p["name"], p["in"]) for p in get["parameters"]] == [
        ("id", "path"),
        ("count", "query"),
        ("active", "query"),
        ("tags", "query"),
        ("page_info.size", "query"),
    ]
    assert "requestBody" not in get
    post = document["paths"]["/v1/things/{id}"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/probe.Page"
    }
