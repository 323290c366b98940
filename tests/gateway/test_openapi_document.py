"""GET /api/v1/openapi.json: an OpenAPI 3.1 document generated from the same descriptors as the routes."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from authsvc.gateway import build_document, service_routes
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


def test_register_answers_201_and_the_others_200(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert "201" in paths["/api/v1/auth/register"]["post"]["responses"]
    assert "200" not in paths["/api/v1/auth/register"]["post"]["responses"]
    assert "200" in paths["/api/v1/auth/login"]["post"]["responses"]


def test_bearer_security_is_declared_only_where_the_contract_requires_it(document: dict[str, Any]) -> None:
    secured = {
        path
        for path, item in document["paths"].items()
        for operation in item.values()
        if "security" in operation
    }
    assert secured == {
        "/api/v1/auth/logout-all",
        "/api/v1/auth/sessions",
        "/api/v1/auth/sessions/{session_id}",
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


def test_errors_have_the_one_error_schema(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["detail", "code", "reason"]
    login = document["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert login["401"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "WWW-Authenticate" in login["401"]["headers"]
    assert "Retry-After" in login["429"]["headers"]


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
