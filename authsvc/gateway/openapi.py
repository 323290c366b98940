"""The OpenAPI 3.1 document of the REST routes, generated from the same descriptors as the routes.

Schemas follow the proto3 JSON mapping as the gateway prints it: proto field names, int32-sized numbers
as JSON integers, 64-bit integers as strings, every field without presence always present in answers.
What the server enforces comes from the contract too: request fields marked
`(google.api.field_behavior) = REQUIRED` are required; each operation lists the error answers of
error_cases.py under their HTTP status; FIELD_SCHEMAS below holds the length limits and formats, the one
table the document takes them from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from authsvc.gateway.error_cases import ErrorCase, health_error_cases, route_error_cases
from authsvc.gateway.routes import Route

if TYPE_CHECKING:  # stub-only names
    from google.protobuf.descriptor_pb2 import FieldOptions
    from google.protobuf.internal.containers import RepeatedScalarFieldContainer
    from google.protobuf.internal.extension_dict import _ExtensionFieldDescriptor

OPENAPI_VERSION = "3.1.0"
BEARER_SCHEME = "bearerAuth"
ERROR_SCHEMA = "Error"
_REF = "#/components/schemas/"
_MAX_QUERY_DEPTH = 3

# googleapis-common-protos types its extension as a plain FieldDescriptor.
_FIELD_BEHAVIOR = cast(
    "_ExtensionFieldDescriptor[FieldOptions, RepeatedScalarFieldContainer[int]]",
    field_behavior_pb2.field_behavior,
)

# The limits the server enforces on request fields, and the formats of fields, keyed by full field name
# (a test checks that every key names a field of the contract and that the numbers are the domain's:
# authsvc/domain/emails.py, passwords.py, tokens.py, account.py). JSON Schema counts characters (code
# points), as the server does, except for passwords, whose upper limit is in UTF-8 bytes: their maxLength
# is the character bound that holds for every password (exact for ASCII), and the description says the rest.
_EMAIL_FORMAT: Mapping[str, Any] = {"format": "idn-email"}  # email-validator accepts internationalised ones
_EMAIL: Mapping[str, Any] = {
    **_EMAIL_FORMAT,
    "maxLength": 254,
    "description": "Trimmed, then checked by email-validator's syntax rules and lower-cased whole.",
}
_NEW_PASSWORD: Mapping[str, Any] = {
    "minLength": 8,
    "maxLength": 72,
    "description": "8 characters to 72 bytes in UTF-8 (bcrypt's limit): a password with non-ASCII "
    "characters reaches 72 bytes before 72 characters (PASSWORD_TOO_LONG).",
}
_PASSWORD: Mapping[str, Any] = {
    "minLength": 1,
    "maxLength": 72,
    "description": "At most 72 bytes in UTF-8 (PASSWORD_TOO_LONG); no minimum beyond not empty, so that a "
    "stricter policy for new passwords never locks out an existing account.",
}
_REFRESH_TOKEN: Mapping[str, Any] = {"maxLength": 4096}
_MAILED_TOKEN: Mapping[str, Any] = {"maxLength": 4096, "description": "From the link in the mail."}
_DISPLAY_NAME: Mapping[str, Any] = {
    "maxLength": 100,
    "description": "Trimmed; at most 100 characters and no control characters (DISPLAY_NAME_INVALID); "
    '"" clears it.',
}
FIELD_SCHEMAS: Mapping[str, Mapping[str, Any]] = {
    "authsvc.v1.RegisterRequest.email": _EMAIL,
    "authsvc.v1.RegisterRequest.password": _NEW_PASSWORD,
    "authsvc.v1.LoginRequest.email": _EMAIL,
    "authsvc.v1.LoginRequest.password": _PASSWORD,
    "authsvc.v1.RefreshRequest.refresh_token": _REFRESH_TOKEN,
    "authsvc.v1.LogoutRequest.refresh_token": _REFRESH_TOKEN,
    "authsvc.v1.UpdateProfileRequest.display_name": _DISPLAY_NAME,
    "authsvc.v1.ChangePasswordRequest.current_password": _PASSWORD,
    "authsvc.v1.ChangePasswordRequest.new_password": _NEW_PASSWORD,
    "authsvc.v1.ForgotPasswordRequest.email": _EMAIL,
    "authsvc.v1.ResetPasswordRequest.token": _MAILED_TOKEN,
    "authsvc.v1.ResetPasswordRequest.new_password": _NEW_PASSWORD,
    "authsvc.v1.VerifyEmailRequest.token": _MAILED_TOKEN,
    "authsvc.v1.DeleteAccountRequest.password": _PASSWORD,
    "authsvc.v1.SetUserDisabledRequest.email": _EMAIL,
    "authsvc.v1.RegisterResponse.email": _EMAIL_FORMAT,
    "authsvc.v1.IntrospectResponse.email": _EMAIL_FORMAT,
    "authsvc.v1.Profile.email": _EMAIL_FORMAT,
    "authsvc.v1.SetUserDisabledResponse.email": _EMAIL_FORMAT,
}

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
        "detail": {"type": "string", "description": "For people; never branch on it."},
        "code": {"type": "string", "examples": ["UNAUTHENTICATED"]},
        "reason": {
            "type": "string",
            "description": "The word to branch on: a value of authsvc_proto's ErrorReason, or the code's "
            "name for a gRPC status without authsvc's ErrorInfo. Each operation lists, per status, the "
            "words it can answer.",
            "examples": ["INVALID_CREDENTIALS"],
        },
    },
    "required": ["detail", "code", "reason"],
}

_REQUEST_ID_HEADER = {
    "description": "The request's X-Request-Id, or the one the gateway generated.",
    "required": True,
    "schema": {"type": "string"},
}
_STATUS_HEADERS: Mapping[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"required": True, "schema": {"type": "string", "const": "Bearer"}}},
    429: {"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
}
_STATUS_DESCRIPTIONS: Mapping[int, str] = {
    400: "The request is malformed, or a field's value is refused.",
    401: "The credentials or the token are not good.",
    403: "Not allowed: no Authorization header at all where a bearer is required, or a caller refused.",
    404: "No such thing for this caller.",
    409: "In conflict with what exists.",
    413: "The request body is over 64 KiB.",
    415: "A non-empty body sent as anything but application/json (charset=utf-8 allowed), or untyped.",
    429: "Too many attempts, or the server is at its limit: retry after Retry-After seconds.",
    500: "An unexpected failure (the detail is always `Internal error`).",
    501: "The server does not implement this RPC.",
    503: "The authentication service, or its store, is unavailable: retry later.",
    504: "The server did not answer within the gateway's deadline.",
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
    responses: dict[str, Any] = {
        str(route.success_status): {
            "description": "Success.",
            "headers": {"X-Request-Id": _REQUEST_ID_HEADER},
            "content": {"application/json": {"schema": {"$ref": _REF + response_name}}},
        },
        **_error_responses(route_error_cases(route)),
        "default": {"$ref": "#/components/responses/Error"},
    }
    operation: dict[str, Any] = {
        "operationId": f"AuthService_{route.rpc_name}",
        "tags": ["AuthService"],
        "parameters": _parameters(route),
        # Statuses in numeric order, `default` last.
        "responses": dict(sorted(responses.items(), key=lambda item: (item[0] == "default", item[0]))),
    }
    if route.body:
        if route.body == "*":
            body_schema: dict[str, Any] = {"$ref": _REF + request_name}
            needed = bool(_required_fields(route.request_descriptor))
        else:
            field = route.request_descriptor.fields_by_name[route.body]
            body_schema = _field_schema(field, schemas, False)
            needed = _is_required(field)
        # An empty body is the empty message: required only when that message would be refused.
        operation["requestBody"] = {
            "required": needed,
            "content": {"application/json": {"schema": body_schema}},
        }
    if route.requires_bearer:
        operation["security"] = [{BEARER_SCHEME: []}]
    return operation


def _error_responses(cases: Iterable[ErrorCase]) -> dict[str, Any]:
    """One response per status, its schema the Error schema narrowed to the codes and words it can carry.

    The narrowing sits beside the `$ref` (JSON Schema 2020-12 applies both), so that validators check the
    words while code generators keep one lenient Error model that a future word cannot break.
    """
    by_status: dict[int, list[ErrorCase]] = {}
    for case in cases:
        by_status.setdefault(case.status, []).append(case)
    responses: dict[str, Any] = {}
    for status, found in sorted(by_status.items()):
        codes = sorted({case.code for case in found})
        reasons = sorted({case.reason for case in found})
        schema = {
            "$ref": _REF + ERROR_SCHEMA,
            "properties": {"code": {"enum": codes}, "reason": {"enum": reasons}},
        }
        responses[str(status)] = _error_response(
            _STATUS_DESCRIPTIONS.get(status, "An error."), _STATUS_HEADERS.get(status), schema
        )
    return responses


def _parameters(route: Route) -> list[dict[str, Any]]:
    parameters = [
        {
            "name": variable.name,
            "in": "path",
            "required": True,
            "schema": _path_schema(route.request_descriptor, variable.field_path),
        }
        for variable in route.variables
    ]
    if route.body == "*":
        return parameters
    taken = {variable.field_path[0] for variable in route.variables} | {route.body}
    fields = [field for field in route.request_descriptor.fields if field.name not in taken]
    return parameters + _query_parameters(fields, prefix="", depth=0)


def _path_schema(descriptor: Descriptor, field_path: Sequence[str]) -> dict[str, Any]:
    """The schema of the scalar a path variable fills (routes.py checked that the path exists)."""
    field = descriptor.fields_by_name[field_path[0]]
    for name in field_path[1:]:
        field = cast(Descriptor, field.message_type).fields_by_name[name]
    if field.message_type is not None:
        return {"type": "string"}
    return _constrained(field, _scalar_or_enum(field), requests=True)


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
        parameters.append({"name": name, "in": "query", "required": _is_required(field), "schema": schema})
    return parameters


def _scalar_or_enum(field: FieldDescriptor) -> dict[str, Any]:
    if field.enum_type is not None:
        return {"type": "string", "enum": [value.name for value in field.enum_type.values]}
    return dict(_SCALARS[field.type])


def _is_required(field: FieldDescriptor) -> bool:
    return field_behavior_pb2.REQUIRED in field.GetOptions().Extensions[_FIELD_BEHAVIOR]


def _required_fields(descriptor: Descriptor) -> list[str]:
    return [field.name for field in descriptor.fields if _is_required(field)]


def _message_schema(descriptor: Descriptor, schemas: dict[str, Any], responses: bool = False) -> str:
    """Register the schema of `descriptor` (and what it reaches) and return its component name."""
    name = descriptor.full_name
    if name in schemas:
        return name
    schemas[name] = {}  # a placeholder first, so recursive messages terminate
    properties = {field.name: _field_schema(field, schemas, responses) for field in descriptor.fields}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    # Answers print every field without presence; requests need the fields the contract marks REQUIRED.
    required = (
        [field.name for field in descriptor.fields if not field.has_presence]
        if responses
        else _required_fields(descriptor)
    )
    if responses or required:
        schema["required"] = required
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
    return _constrained(field, _scalar_or_enum(field), requests=not responses)


def _constrained(field: FieldDescriptor, schema: dict[str, Any], requests: bool) -> dict[str, Any]:
    """`schema` with the field's entry of FIELD_SCHEMAS; in a request, a REQUIRED string is not empty,
    since proto3 JSON cannot tell "" from absent."""
    if requests and field.type == FieldDescriptor.TYPE_STRING and _is_required(field):
        schema["minLength"] = 1
    return {**schema, **FIELD_SCHEMAS.get(field.full_name, {})}


def _error_response(
    description: str, headers: dict[str, Any] | None = None, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Request-Id": _REQUEST_ID_HEADER, **(headers or {})},
        "content": {"application/json": {"schema": schema or {"$ref": _REF + ERROR_SCHEMA}}},
    }


def _health_operation() -> dict[str, Any]:
    status_schema = {
        "type": "object",
        "properties": {"status": {"type": "string", "enum": ["SERVING", "NOT_SERVING"]}},
        "required": ["status"],
    }
    responses = _error_responses(health_error_cases())
    responses["503"]["description"] = "The gRPC server is down or not SERVING."
    return {
        "operationId": "Gateway_Health",
        "tags": ["Gateway"],
        "responses": {
            "200": {
                "description": "The gateway is up and the gRPC server reports SERVING.",
                "headers": {"X-Request-Id": _REQUEST_ID_HEADER},
                "content": {"application/json": {"schema": status_schema}},
            },
            **responses,
        },
    }
