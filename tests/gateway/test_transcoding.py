"""JSON in and out through json_format, as docs/api.md's clients send and expect it."""

from __future__ import annotations

import json
from typing import cast

import pytest
from authsvc_proto.v1 import auth_pb2
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

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


def _filled(message_class: type[Message]) -> Message:
    """A message of `message_class` with every flat field set to a value other than its default."""
    message = message_class()
    fields: list[FieldDescriptor] = list(cast(Descriptor, message.DESCRIPTOR).fields)
    for number, field in enumerate(fields, start=1):
        if field.is_repeated or field.message_type is not None:
            continue
        if field.type == FieldDescriptor.TYPE_STRING:
            setattr(message, field.name, f"value-{number}")
        elif field.type == FieldDescriptor.TYPE_BOOL:
            setattr(message, field.name, True)
        elif field.enum_type is not None:
            setattr(message, field.name, field.enum_type.values[-1].number)
        elif field.cpp_type in (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE):
            setattr(message, field.name, 0.5)
        else:
            setattr(message, field.name, number * 1000)
    return message


_ROUTES = service_routes(include_internal=True)


@pytest.mark.parametrize("route", _ROUTES, ids=[route.rpc_name for route in _ROUTES])
@pytest.mark.parametrize("filled", [False, True], ids=["defaults", "filled"])
def test_every_answer_prints_as_json_format_prints_it(route: Route, filled: bool) -> None:
    # Flat messages skip json_format; the result must not tell.
    message = _filled(route.response_class) if filled else route.response_class()
    expected = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    assert message_to_json(message) == expected


@pytest.mark.parametrize(
    "route", [r for r in _ROUTES if r.body == "*"], ids=[r.rpc_name for r in _ROUTES if r.body == "*"]
)
def test_every_body_reads_as_json_format_reads_it(route: Route) -> None:
    message = _filled(route.request_class)
    for spelling in (True, False):
        document = json_format.MessageToDict(message, preserving_proto_field_name=spelling)
        assert request_from_http(route, json.dumps(document).encode(), {}, []) == message


@pytest.mark.parametrize(
    "body",
    [
        b'{"refresh_token": "a", "refreshToken": "b"}',  # one field in two spellings: the last one wins
        b'{"refresh_token": true}',
        b'{"refresh_token": null, "x": 1}',  # null is the default; unknown fields are ignored
        b'{"refresh_token": "\\ud800"}',  # a lone surrogate is no string protobuf holds
        b'{"refresh_token": ["a"]}',
    ],
)
def test_bodies_the_direct_path_declines_get_json_formats_answer(body: bytes) -> None:
    expected = auth_pb2.RefreshRequest()
    try:
        json_format.ParseDict(json.loads(body), expected, ignore_unknown_fields=True)
    except json_format.ParseError:
        with pytest.raises(GatewayError) as raised:
            request_from_http(_route("Refresh"), body, {}, [])
        assert (raised.value.status, raised.value.reason) == (400, "INVALID_FIELD")
    else:
        assert request_from_http(_route("Refresh"), body, {}, []) == expected
