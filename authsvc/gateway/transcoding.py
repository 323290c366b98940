"""JSON <-> protobuf for one route, through protobuf's json_format (the proto3 JSON mapping).

In: the body (all of it for `body: "*"`, or one named field), then path variables, then, for the fields
neither covers, the query string. Both spellings of a field name are accepted and unknown fields ignored.
Out: proto field names (snake_case) with every field printed, so `"revoked_sessions": 0` appears.

json_format walks descriptors in Python on every call, a sizeable part of the gateway's own time per
request. Most messages are flat (strings, booleans, 32-bit integers): those take a direct path that gives
the same result, built from a plan computed once per message type; anything else, and any input the
direct path is unsure of, goes through json_format, so its errors and edge cases stay the reference.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from authsvc.gateway.errors import bad_request
from authsvc.gateway.routes import Route

# Nesting limit handed to json_format (its default is 100); json.loads has its own, past which it raises
# RecursionError, answered 400 like any other malformed body. authsvc's messages nest one level deep.
MAX_JSON_DEPTH = 64


def request_from_http(
    route: Route,
    body: bytes,
    path_values: Mapping[str, str],
    query: Sequence[tuple[str, str]],
) -> Message:
    """Build the request message of `route`; raises GatewayError (400) for input that does not fit it."""
    document: dict[str, Any] = {}
    if route.body:
        parsed = _parse_body(body)
        if route.body == "*" and not route.variables and isinstance(parsed, dict):
            direct = _flat_request(route.request_class, parsed)
            if direct is not None:
                return direct
        if route.body == "*":
            if parsed is None:
                parsed = {}  # an empty body is an empty message, as for `curl -X POST` with no data
            if not isinstance(parsed, dict):
                raise bad_request("The request body must be a JSON object", "INVALID_JSON")
            document = parsed
        elif parsed is not None:
            document[route.body] = parsed
    for variable in route.variables:
        _set_path(document, variable.field_path, path_values[variable.name])
    if route.body != "*":
        _merge_query(document, route, query)
    message = route.request_class()
    try:
        json_format.ParseDict(
            document, message, ignore_unknown_fields=True, max_recursion_depth=MAX_JSON_DEPTH
        )
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise bad_request(f"Invalid request: {_short(exc)}", "INVALID_FIELD") from exc
    return message


def message_to_json(message: Message) -> dict[str, Any]:
    """The proto3 JSON form of `message` with proto field names and default values printed."""
    printed = _printed_fields(message.DESCRIPTOR)
    if printed is not None:
        # Fields with presence (proto3 `optional`) are printed only when set, as json_format does.
        return {
            name: getattr(message, name)
            for name, has_presence in printed
            if not has_presence or message.HasField(name)
        }
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


# Singular fields whose JSON value is the Python value itself (int64 and its kin are JSON strings, floats
# have spellings for NaN and infinities, enums print names: those go through json_format).
_DIRECT_OUT = frozenset(
    {
        FieldDescriptor.TYPE_STRING,
        FieldDescriptor.TYPE_BOOL,
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_FIXED32,
    }
)
# Request fields set directly from a JSON value of exactly this Python type.
_DIRECT_IN: Mapping[int, type] = {FieldDescriptor.TYPE_STRING: str, FieldDescriptor.TYPE_BOOL: bool}


@cache
def _printed_fields(descriptor: Descriptor) -> tuple[tuple[str, bool], ...] | None:
    """(name, has presence) of each field when every field of the message prints as its own value."""
    if any(field.is_repeated or field.type not in _DIRECT_OUT for field in descriptor.fields):
        return None
    return tuple((field.name, field.has_presence) for field in descriptor.fields)


@cache
def _settable_fields(descriptor: Descriptor) -> Mapping[str, tuple[str, type]]:
    """Both JSON spellings of each singular string or bool field -> (proto name, Python type)."""
    names: dict[str, tuple[str, type]] = {}
    for field in descriptor.fields:
        kind = _DIRECT_IN.get(field.type)
        if kind is not None and not field.is_repeated:
            names[field.name] = names[field.json_name] = (field.name, kind)
    return names


def _flat_request(request_class: type[Message], parsed: dict[str, Any]) -> Message | None:
    """The message built straight from a JSON object of known fields with values of their exact type;
    None whenever json_format must decide (an unknown or repeated key, another type, a bad string)."""
    settable = _settable_fields(request_class.DESCRIPTOR)
    values: dict[str, Any] = {}
    for key, value in parsed.items():
        known = settable.get(key)
        if known is None or type(value) is not known[1] or known[0] in values:
            return None
        values[known[0]] = value
    try:
        return request_class(**values)
    except (ValueError, TypeError):  # e.g. a lone surrogate: json_format words the 400
        return None


def _parse_body(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        text = body.decode("utf-8")
        return json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad_request("The request body is not valid JSON", "INVALID_JSON") from exc


def _set_path(document: dict[str, Any], field_path: Sequence[str], value: Any) -> None:
    target = document
    for name in field_path[:-1]:
        child = target.get(name)
        if not isinstance(child, dict):
            child = {}
            target[name] = child
        target = child
    target[field_path[-1]] = value


def _merge_query(document: dict[str, Any], route: Route, query: Sequence[tuple[str, str]]) -> None:
    """Query parameters fill the fields that neither the body nor a path variable names (grpc-gateway)."""
    taken = {variable.field_path[0] for variable in route.variables} | {route.body}
    values: dict[tuple[str, ...], list[str]] = {}
    for key, value in query:
        values.setdefault(tuple(key.split(".")), []).append(value)
    for field_path, raw in values.items():
        field = _find_field(route.request_descriptor, field_path)
        if (
            field is None
            or field_path[0] in taken
            or _proto_name(route.request_descriptor, field_path[0]) in taken
        ):
            continue
        converted = [_scalar_from_query(field, item) for item in raw]
        _set_path(document, field_path, converted if field.is_repeated else converted[-1])


def _find_field(descriptor: Descriptor, field_path: Sequence[str]) -> FieldDescriptor | None:
    current: Descriptor | None = descriptor
    field: FieldDescriptor | None = None
    for name in field_path:
        if current is None:
            return None
        field = current.fields_by_name.get(name) or _by_json_name(current, name)
        if field is None:
            return None
        current = field.message_type
    return field


def _by_json_name(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    return next((field for field in descriptor.fields if field.json_name == name), None)


def _proto_name(descriptor: Descriptor, name: str) -> str:
    field = descriptor.fields_by_name.get(name) or _by_json_name(descriptor, name)
    return field.name if field is not None else name


def _scalar_from_query(field: FieldDescriptor, value: str) -> Any:
    # The query string is text; json_format takes numbers, enums and well-known types as strings, but
    # wants real booleans.
    if field.type == FieldDescriptor.TYPE_BOOL:
        if value in ("true", "false"):
            return value == "true"
        raise bad_request(f"Invalid boolean for {field.name!r}: {value[:32]!r}", "INVALID_FIELD")
    return value


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
