"""REST routes read from the contract: each RPC's `google.api.http` rule and the authsvc method options.

Nothing here is written per RPC: adding an annotated RPC to the proto adds its route, the way grpc-gateway
and Envoy's gRPC-JSON transcoder work. Path templates follow google/api/http.proto's grammar:
`Template = "/" Segments [ ":" Verb ]`, a segment being a literal, `*`, `**` or `{field.path[=Segments]}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from authsvc_proto.v1 import auth_pb2, errors_pb2, options_pb2
from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import Descriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

if TYPE_CHECKING:  # stub-only names
    from google.protobuf.descriptor_pb2 import MethodOptions
    from google.protobuf.internal.extension_dict import _ExtensionFieldDescriptor

# googleapis-common-protos types its extension as a plain FieldDescriptor.
_HTTP_RULE = cast("_ExtensionFieldDescriptor[MethodOptions, http_pb2.HttpRule]", annotations_pb2.http)
_VERBS = ("get", "put", "post", "delete", "patch")
_PLAIN_SEGMENT = re.compile(r"[^/{}*]+")


class RouteError(ValueError):
    """A `google.api.http` rule the gateway cannot serve (bad template, unknown field)."""


@dataclass(frozen=True)
class PathVariable:
    """One `{field.path}` of a template; `name` is the identifier aiohttp's router matches it under."""

    name: str
    field_path: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    """One REST binding of one RPC, with everything the gateway needs to call it."""

    rpc_name: str
    grpc_method: str
    http_method: str
    template: str
    router_path: str
    variables: tuple[PathVariable, ...]
    body: str
    response_body: str
    request_class: type[Message]
    response_class: type[Message]
    requires_bearer: bool
    success_status: int
    # The words of the RPC's `(authsvc.v1.error_reasons)`: what the server may refuse it with.
    error_reasons: tuple[str, ...] = ()

    @property
    def request_descriptor(self) -> Descriptor:
        return cast(Descriptor, self.request_class.DESCRIPTOR)

    @property
    def response_descriptor(self) -> Descriptor:
        return cast(Descriptor, self.response_class.DESCRIPTOR)


def service_routes(
    service: ServiceDescriptor | None = None, *, include_internal: bool = False
) -> tuple[Route, ...]:
    """Every route of `service` (authsvc.v1.AuthService by default), additional bindings included.

    RPCs without a `google.api.http` rule get no route, and neither do those marked
    `(authsvc.v1.internal)` unless `include_internal`. Raises RouteError on a rule it cannot serve.
    """
    service = service or auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
    routes: list[Route] = []
    for method in service.methods:
        options = method.GetOptions()
        if not options.HasExtension(_HTTP_RULE):
            continue
        if options.Extensions[options_pb2.internal] and not include_internal:
            continue
        rule = options.Extensions[_HTTP_RULE]
        for binding in (rule, *rule.additional_bindings):
            routes.append(_route(service, method, binding))
    return tuple(routes)


def _route(service: ServiceDescriptor, method: MethodDescriptor, rule: http_pb2.HttpRule) -> Route:
    http_method, template = _verb_and_template(method, rule)
    router_path, variables = _router_path(template)
    request_class = GetMessageClass(method.input_type)
    for variable in variables:
        _check_field_path(method.input_type, variable.field_path, template)
    if rule.body not in ("", "*"):
        _check_field_path(method.input_type, (rule.body,), template)
    options = method.GetOptions()
    return Route(
        rpc_name=method.name,
        grpc_method=f"/{service.full_name}/{method.name}",
        http_method=http_method,
        template=template,
        router_path=router_path,
        variables=variables,
        body=rule.body,
        response_body=rule.response_body,
        request_class=request_class,
        response_class=GetMessageClass(method.output_type),
        requires_bearer=options.Extensions[options_pb2.requires_bearer],
        success_status=options.Extensions[options_pb2.http_success_status] or 200,
        error_reasons=tuple(
            errors_pb2.ErrorReason.Name(reason) for reason in options.Extensions[options_pb2.error_reasons]
        ),
    )


def _verb_and_template(method: MethodDescriptor, rule: http_pb2.HttpRule) -> tuple[str, str]:
    pattern = rule.WhichOneof("pattern")
    if pattern is None:
        raise RouteError(f"{method.full_name}: google.api.http rule has no verb")
    if pattern == "custom":
        return rule.custom.kind.upper(), rule.custom.path
    if pattern not in _VERBS:
        raise RouteError(f"{method.full_name}: unsupported verb {pattern!r}")
    template: str = getattr(rule, pattern)
    if not template.startswith("/"):
        raise RouteError(f"{method.full_name}: path template {template!r} must start with '/'")
    return pattern.upper(), template


def _router_path(template: str) -> tuple[str, tuple[PathVariable, ...]]:
    """Turn a google.api.http template into an aiohttp path (`{name}` or `{name:regex}`)."""
    path, colon, verb = _split_verb(template)
    parts: list[str] = []
    variables: list[PathVariable] = []
    for segment in _segments(path[1:], template):
        if segment.startswith("{"):
            inner = segment[1:-1]
            field_text, has_pattern, pattern = inner.partition("=")
            field_path = tuple(field_text.split("."))
            name = "__".join(field_path)
            variables.append(PathVariable(name=name, field_path=field_path))
            regex = _segments_regex(pattern, template) if has_pattern else None
            parts.append(f"{{{name}:{regex}}}" if regex else f"{{{name}}}")
        elif segment in ("*", "**"):
            parts.append(f"{{_wild{len(parts)}:{_segments_regex(segment, template)}}}")
        else:
            parts.append(segment)
    return "/" + "/".join(parts) + (colon + verb), tuple(variables)


def _split_verb(template: str) -> tuple[str, str, str]:
    last = template.rsplit("/", 1)[-1]
    if ":" in last and "}" not in last.rsplit(":", 1)[1]:
        path, _, verb = template.rpartition(":")
        return path, ":", verb
    return template, "", ""


def _segments(path: str, template: str) -> list[str]:
    """Split on '/' outside braces; each segment is checked against the grammar."""
    segments: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(path):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "/" and depth == 0:
            segments.append(path[start:index])
            start = index + 1
    segments.append(path[start:])
    for segment in segments:
        is_variable = segment.startswith("{") and segment.endswith("}") and segment.count("{") == 1
        if not (is_variable or segment in ("*", "**") or _PLAIN_SEGMENT.fullmatch(segment)):
            raise RouteError(f"path template {template!r}: bad segment {segment!r}")
    return segments


def _segments_regex(pattern: str, template: str) -> str:
    pieces = []
    for segment in pattern.split("/"):
        if segment == "*":
            pieces.append("[^/]+")
        elif segment == "**":
            pieces.append(".+")
        elif _PLAIN_SEGMENT.fullmatch(segment):
            pieces.append(re.escape(segment))
        else:
            raise RouteError(f"path template {template!r}: bad variable pattern {pattern!r}")
    return "/".join(pieces)


def _check_field_path(descriptor: Descriptor, field_path: tuple[str, ...], template: str) -> None:
    current: Descriptor | None = descriptor
    for name in field_path:
        field = current.fields_by_name.get(name) if current is not None else None
        if field is None:
            raise RouteError(f"{template!r}: {descriptor.full_name} has no field {'.'.join(field_path)!r}")
        current = field.message_type
