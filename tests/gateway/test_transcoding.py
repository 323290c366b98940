"""JSON in and out through json_format, as docs/api.md's clients send and expect it."""

from __future__ import annotations

import json

import pytest
from authsvc_proto.v1 import auth_pb2
from google.protobuf import json_format

from authsvc.gateway.errors import GatewayError
from authsvc.gateway.routes import Route, service_routes
from authsvc.gateway.transcoding import message_to_json, request_from_http
from tests.gateway.probe import probe_service


def _route(name: str) -> Route:
    return next(route for route in service_routes() if route.rpc_name == name)


def test_a_login_body_becomes_a_login_request() -> None:
    body = json.dumps({"email": "a@example.com", "password": "secret-password"}).encode()
    message = request_from_http(_route("Login"), body, {}, [])
    assert message == auth_pb2.LoginRequest(email="a@example.com", password="secret-password")


def test_both_spellings_of_a_field_name_are_accepted() -> None:
    route = _route("Refresh")
    snake = request_from_http(route, b'{"refresh_token": "t"}', {}, [])
    camel = request_from_http(route, b'{"refreshToken": "t"}', {}, [])
    assert snake == camel == auth_pb2.RefreshRequest(refresh_token="t")


def test_unknown_request_fields_are_ignored() -> None:
    message = request_from_http(_route("Logout"), b'{"refresh_token": "t", "device": "phone"}', {}, [])
    assert message == auth_pb2.LogoutRequest(refresh_token="t")


@pytest.mark.parametrize("body", [b"", b"   ", b"{}"])
def test_an_empty_body_is_an_empty_request(body: bytes) -> None:
    assert request_from_http(_route("LogoutAll"), body, {}, []) == auth_pb2.LogoutAllRequest()


@pytest.mark.parametrize(
    ("case", "body", "reason"),
    [
        ("not JSON", b"{not json", "INVALID_JSON"),
        ("not UTF-8", b'{"email": "\xff"}', "INVALID_JSON"),
        ("an array, not an object", b"[]", "INVALID_JSON"),
        ("a number where a string goes", b'{"email": 5, "password": "x"}', "INVALID_FIELD"),
        ("an object where a string goes", b'{"email": {"a": 1}}', "INVALID_FIELD"),
        ("nesting beyond any sane depth", b"[" * 5000 + b"]" * 5000, "INVALID_JSON"),
    ],
)
def test_input_that_does_not_fit_the_message_is_a_400(case: str, body: bytes, reason: str) -> None:
    with pytest.raises(GatewayError) as raised:
        request_from_http(_route("Login"), body, {}, [])
    assert (raised.value.status, raised.value.code, raised.value.reason) == (400, "INVALID_ARGUMENT", reason)


def test_answers_use_proto_field_names_and_print_default_values() -> None:
    assert message_to_json(auth_pb2.LogoutAllResponse(message="done")) == {
        "message": "done",
        "revoked_sessions": 0,
    }


def test_int32_counts_are_json_numbers() -> None:
    pair = auth_pb2.TokenPair(token_type="Bearer", expires_in=900, refresh_expires_in=2592000)
    printed = message_to_json(pair)
    assert printed["expires_in"] == 900
    assert printed["refresh_expires_in"] == 2592000
    assert set(printed) == {
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
        "refresh_expires_in",
        "session_id",
    }


def _probe_route(rule: str) -> Route:
    [route] = service_routes(probe_service(rule))
    return route


def test_path_variables_and_query_parameters_fill_a_get_request() -> None:
    route = _probe_route('get: "/v1/things/{id}"')
    message = request_from_http(
        route,
        b"",
        {"id": "t-1"},
        [
            ("count", "7"),
            ("active", "true"),
            ("tags", "a"),
            ("tags", "b"),
            ("pageInfo.size", "20"),
            ("x", "1"),
        ],
    )
    assert json_format.MessageToDict(message, preserving_proto_field_name=True) == {
        "id": "t-1",
        "count": 7,
        "active": True,
        "tags": ["a", "b"],
        "page_info": {"size": 20},
    }


def test_a_query_parameter_cannot_override_a_path_variable() -> None:
    route = _probe_route('get: "/v1/things/{id}"')
    message = request_from_http(route, b"", {"id": "from-path"}, [("id", "from-query")])
    assert json_format.MessageToDict(message)["id"] == "from-path"


def test_a_named_body_field_takes_the_body_and_the_query_the_rest() -> None:
    route = _probe_route('post: "/v1/things/{id}" body: "page_info"')
    message = request_from_http(route, b'{"size": 5}', {"id": "t"}, [("count", "2"), ("page_info.size", "9")])
    assert json_format.MessageToDict(message, preserving_proto_field_name=True) == {
        "id": "t",
        "count": 2,
        "page_info": {"size": 5},
    }


@pytest.mark.parametrize(("key", "value"), [("count", "seven"), ("active", "yes"), ("count", "1.5")])
def test_a_query_value_of_the_wrong_type_is_a_400(key: str, value: str) -> None:
    route = _probe_route('get: "/v1/things"')
    with pytest.raises(GatewayError) as raised:
        request_from_http(route, b"", {}, [(key, value)])
    assert raised.value.status == 400
