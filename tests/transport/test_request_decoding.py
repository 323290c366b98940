"""Requests are decoded by the service's own handlers: a malformed message is INVALID_ARGUMENT, not
grpcio's UNKNOWN with a traceback in the log; an RPC with no implementation is UNIMPLEMENTED."""

from __future__ import annotations

import logging

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc
from google.protobuf.descriptor import FieldDescriptor

from authsvc.transport.decoding import add_servicer
from authsvc.transport.server import AUTH_SERVICE_DESCRIPTOR
from tests.status import expect_error

METHODS = [method.name for method in AUTH_SERVICE_DESCRIPTOR.methods]
CORRUPT = {
    "truncated varint": b"\x08\xff\xff",
    "length past the end": b"\x0a\x40abc",
    "wire type 7": b"\x0f",
}
# Every string field of every request, holding bytes that are not UTF-8.
BAD_UTF8 = [
    (method.name, field.name, bytes([field.number << 3 | 2, 3]) + b"\xff\xfe\xfd")
    for method in AUTH_SERVICE_DESCRIPTOR.methods
    for field in method.input_type.fields
    if field.type == FieldDescriptor.TYPE_STRING
]


async def assert_invalid_request(auth_server, method: str, body: bytes, caplog) -> None:
    raw = auth_server.channel.unary_unary(f"/{AUTH_SERVICE_DESCRIPTOR.full_name}/{method}")
    with caplog.at_level(logging.WARNING):
        await expect_error(raw(body), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    assert [record for record in caplog.records if record.exc_info] == []


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("body", list(CORRUPT), ids=list(CORRUPT))
async def test_a_corrupt_message_is_invalid_argument_without_a_traceback(auth_server, method, body, caplog):
    await assert_invalid_request(auth_server, method, CORRUPT[body], caplog)


@pytest.mark.parametrize(("method", "field", "body"), BAD_UTF8, ids=[f"{m}.{f}" for m, f, _ in BAD_UTF8])
async def test_invalid_utf8_in_a_string_field_is_invalid_argument(auth_server, method, field, body, caplog):
    await assert_invalid_request(auth_server, method, body, caplog)


async def test_unknown_fields_are_ignored_as_protobuf_says(auth_server, register):
    await register()
    raw = auth_server.channel.unary_unary(f"/{AUTH_SERVICE_DESCRIPTOR.full_name}/Login")
    known = auth_pb2.LoginRequest(
        email="ada@example.com", password="correct horse battery"
    ).SerializeToString()
    answer = auth_pb2.TokenPair.FromString(await raw(known + b"\xa0\x06\x01"))  # field 100, varint 1
    assert answer.token_type == "Bearer"


async def test_an_rpc_the_servicer_does_not_implement_is_unimplemented():
    server = grpc.aio.server()
    # The generated base class, as for an RPC just added to the proto: no method is implemented.
    base = auth_pb2_grpc.AuthServiceServicer()  # type: ignore[abstract]
    add_servicer(base, AUTH_SERVICE_DESCRIPTOR, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            call = stub.Register(auth_pb2.RegisterRequest(email="ada@example.com", password="x" * 8))
            await expect_error(call, grpc.StatusCode.UNIMPLEMENTED, "UNIMPLEMENTED")
    finally:
        await server.stop(None)
