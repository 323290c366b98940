"""The OpenAPI 3.1 document of the REST routes, generated from the same descriptors as the routes.

Schemas follow the proto3 JSON mapping as the gateway prints it: proto field names, int32-sized numbers
as JSON integers, 64-bit integers as strings, every field without presence always present in answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from authsvc.gateway.routes import Route

OPENAPI_VERSION = "3.1.0"
BEARER_SCHEME = "bearerAuth"
ERROR_SCHEMA = "Error"
_REF = "#/components/schemas/"
_MAX_QUERY_DEPTH = 3

_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "minimum": 0, "maximum": 4294967295},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "minimum": 0, "maximum": 4294967295},
    # proto3 JSON writes 64-bit integers as decimal strings.
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
}

_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?s$"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
}

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error answer: a human message, the gRPC code name and a stable reason word.",
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string", "examples": ["UNAUTHENTICATED"]},
        "reason": {"type": "string", "examples": ["INVALID_CREDENTIALS"]},
    },
    "required": ["detail", "code", "reason"],
}

_REQUEST_ID_HEADER = {
    "description": "The request's X-Request-Id, or the one the gateway generated.",
    "required": True,
    "schema": {"type": "string"},
}


def build_document(routes: Sequence[Route], title: str = "authsvc", version: str = "v1") -> dict[str, Any]:
    """The whole document: one operation per route, component schemas for every message reached."""
    schemas: dict[str, Any] = {ERROR_SCHEMA: _ERROR_SCHEMA}
    paths: dict[str, Any] = {"/healthz": {"get": _health_operation()}}
    for route in routes:
        path = paths.setdefault(_openapi_path(route), {})
        path[route.http_method.lower()] = _operation(route, schemas)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": "REST sidecar of authsvc.v1.AuthService, generated from its google.api.http rules",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {BEARER_SCHEME: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "responses": {"Error": _error_response("An error, in the one error shape.")},
        },
    }


def _openapi_path(route: Route) -> str:
    path = route.template
    for variable in route.variables:
        dotted = ".".join(variable.field_path)
        start = path.index("{" + dotted)
        end = path.index("}", start)
        path = path[:start] + "{" + variable.name + "}" + path[end + 1 :]
    return path


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    request_name = _message_schema(route.request_descriptor, schemas)
    response_name = _message_schema(route.response_descriptor, schemas, responses=True)
    operation: dict[str, Any] = {
        "operationId": f"AuthService_{route.rpc_name}",
        "tags": ["AuthService"],
        "parameters": _parameters(route),
        "responses": {
            str(route.success_status): {
                "description": "Success.",
                "headers": {"X-Request-Id": _REQUEST_ID_HEADER},
                "content": {"application/json": {"schema": {"$ref": _REF + response_name}}},
            },
            "400": _error_response("Malformed request: invalid JSON, a wrong field type, a bad value."),
            "401": _error_response(
                "Invalid credentials or token.",
                {"WWW-Authenticate": {"required": True, "schema": {"type": "string", "const": "Bearer"}}},
            ),
            "413": _error_response("The request body is over 64 KiB."),
            "429": _error_response(
                "Too many attempts.",
                {"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
            ),
            "503": _error_response("The authentication service is unavailable."),
            "default": {"$ref": "#/components/responses/Error"},
        },
    }
    if route.body:
        body_schema = (
            {"$ref": _REF + request_name}
            if route.body == "*"
            else _field_schema(route.request_descriptor.fields_by_name[route.body], schemas, False)
        )
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": body_schema}},
        }
        operation["responses"]["415"] = _error_response(
            "A non-empty body sent as anything but application/json (charset=utf-8 allowed), or untyped."
        )
    if route.requires_bearer:
        operation["security"] = [{BEARER_SCHEME: []}]
        operation["responses"]["403"] = _error_response("No Authorization header at all.")
    # Statuses in numeric order, `default` last, however they were added.
    operation["responses"] = dict(
        sorted(operation["responses"].items(), key=lambda item: (item[0] == "default", item[0]))
    )
    return operation


def _parameters(route: Route) -> list[dict[str, Any]]:
    parameters = [
        {"name": variable.name, "in": "path", "required": True, "schema": {"type": "string"}}
        for variable in route.variables
    ]
    if route.body == "*":
        return parameters
    taken = {variable.field_path[0] for variable in route.variables} | {route.body}
    fields = [field for field in route.request_descriptor.fields if field.name not in taken]
    return parameters + _query_parameters(fields, prefix="", depth=0)


def _query_parameters(fields: Sequence[FieldDescriptor], prefix: str, depth: int) -> list[dict[str, Any]]:
    """Scalar fields as `name`, fields of nested messages as `outer.inner` (grpc-gateway's convention)."""
    parameters: list[dict[str, Any]] = []
    for field in fields:
        name = prefix + field.name
        message = field.message_type
        if message is not None and message.full_name not in _WELL_KNOWN:
            if not field.is_repeated and depth < _MAX_QUERY_DEPTH:
                parameters += _query_parameters(message.fields, prefix=name + ".", depth=depth + 1)
            continue
        schema = {"type": "string"} if message is not None else _scalar_or_enum(field)
        if field.is_repeated:
            schema = {"type": "array", "items": schema}
        parameters.append({"name": name, "in": "query", "required": False, "schema": schema})
    return parameters


def _scalar_or_enum(field: FieldDescriptor) -> dict[str, Any]:
    if field.enum_type is not None:
        return {"type": "string", "enum": [value.name for value in field.enum_type.values]}
    return dict(_SCALARS[field.type])


def _message_schema(descriptor: Descriptor, schemas: dict[str, Any], responses: bool = False) -> str:
    """Register the schema of `descriptor` (and what it reaches) and return its component name."""
    name = descriptor.full_name
    if name in schemas:
        return name
    schemas[name] = {}  # a placeholder first, so recursive messages terminate
    properties = {field.name: _field_schema(field, schemas, responses) for field in descriptor.fields}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if responses:
        schema["required"] = [field.name for field in descriptor.fields if not field.has_presence]
    schemas[name] = schema
    return name


def _field_schema(field: FieldDescriptor, schemas: dict[str, Any], responses: bool) -> dict[str, Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value_field = field.message_type.fields_by_name["value"]
        return {"type": "object", "additionalProperties": _single_schema(value_field, schemas, responses)}
    single = _single_schema(field, schemas, responses)
    return {"type": "array", "items": single} if field.is_repeated else single


def _single_schema(field: FieldDescriptor, schemas: dict[str, Any], responses: bool) -> dict[str, Any]:
    if field.message_type is not None:
        well_known = _WELL_KNOWN.get(field.message_type.full_name)
        if well_known is not None:
            return dict(well_known)
        return {"$ref": _REF + _message_schema(field.message_type, schemas, responses)}
    return _scalar_or_enum(field)


def _error_response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Request-Id": _REQUEST_ID_HEADER, **(headers or {})},
        "content": {"application/json": {"schema": {"$ref": _REF + ERROR_SCHEMA}}},
    }


def _health_operation() -> dict[str, Any]:
    status_schema = {
        "type": "object",
        "properties": {"status": {"type": "string", "enum": ["SERVING", "NOT_SERVING"]}},
        "required": ["status"],
    }
    return {
        "operationId": "Gateway_Health",
        "tags": ["Gateway"],
        "responses": {
            "200": {
                "description": "The gateway is up and the gRPC server reports SERVING.",
                "headers": {"X-Request-Id": _REQUEST_ID_HEADER},
                "content": {"application/json": {"schema": status_schema}},
            },
            "503": _error_response("The gRPC server is down or not SERVING."),
        },
    }
