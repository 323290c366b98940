"""Fuzzing the live server: generated requests for every RPC, and random bytes on the wire.

Whatever arrives, the answer is never INTERNAL or UNKNOWN and the server keeps serving. The strategies
are built from the service descriptor, so RPCs added to the proto are fuzzed too. Example counts are
bounded so that the whole file runs in seconds.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authsvc.app.start import RunningServer, start_server
from authsvc.transport.server import AUTH_SERVICE_DESCRIPTOR
from tests.conftest import PASSWORD, make_settings

pytestmark = pytest.mark.slow

METHODS = {method.name: method for method in AUTH_SERVICE_DESCRIPTOR.methods}
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@dataclass
class LiveServer:
    """A server on its own event loop in a thread, so that hypothesis drives it with a blocking client."""

    running: RunningServer
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    channel: grpc.Channel
    genuine: list[str]  # real emails, passwords and tokens, so that fuzzing reaches past validation


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[LiveServer]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzz-server", daemon=True)
    thread.start()
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    server_settings = make_settings(data_dir)
    running = asyncio.run_coroutine_threadsafe(start_server(server_settings), loop).result(60)
    channel = grpc.insecure_channel(running.target)
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    stub.Register(auth_pb2.RegisterRequest(email="ada@example.com", password=PASSWORD))
    pair = stub.Login(auth_pb2.LoginRequest(email="ada@example.com", password=PASSWORD))
    genuine = ["ada@example.com", PASSWORD, pair.access_token, pair.refresh_token, pair.session_id]
    try:
        yield LiveServer(running, loop, thread, channel, genuine)
    finally:
        channel.close()
        asyncio.run_coroutine_threadsafe(running.stop(1), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def text_values(genuine: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=80),
        st.sampled_from(genuine),
        st.sampled_from(genuine).map(lambda value: value[:-1] + "x"),
        st.builds(lambda a, b: f"{a}@{b}", st.text(max_size=20), st.text(max_size=20)),
        st.text(min_size=1, max_size=3).map(lambda value: value * 3000),
    )


def field_values(field: FieldDescriptor, genuine: list[str], depth: int) -> st.SearchStrategy[Any]:
    kind = field.type
    if field.message_type is not None:
        element: st.SearchStrategy[Any] = message_values(field.message_type, genuine, depth + 1)
    elif kind == FieldDescriptor.TYPE_STRING:
        element = text_values(genuine)
    elif kind == FieldDescriptor.TYPE_BYTES:
        element = st.binary(max_size=200)
    elif kind == FieldDescriptor.TYPE_BOOL:
        element = st.booleans()
    elif field.enum_type is not None:
        element = st.sampled_from([value.number for value in field.enum_type.values])
    elif kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        element = st.floats(width=32 if kind == FieldDescriptor.TYPE_FLOAT else 64)
    elif kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        element = st.integers(0, 2**32 - 1)
    elif kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        element = st.integers(0, 2**64 - 1)
    elif kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        element = st.integers(-(2**63), 2**63 - 1)
    else:
        element = st.integers(-(2**31), 2**31 - 1)
    if field.is_repeated and not _is_map(field):
        return st.lists(element, max_size=3)
    return element


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def message_values(descriptor: Descriptor, genuine: list[str], depth: int = 0) -> st.SearchStrategy[Any]:
    """Messages of `descriptor` with any subset of their fields set to generated values."""
    message_class = message_factory.GetMessageClass(descriptor)
    if depth > 2:
        return st.just(message_class())
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.message_type is not None and _is_map(field):
            key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            optional[field.name] = st.dictionaries(
                field_values(key, genuine, depth), field_values(value, genuine, depth), max_size=3
            )
        else:
            optional[field.name] = field_values(field, genuine, depth)
    return st.fixed_dictionaries({}, optional=optional).map(lambda fields: message_class(**fields))


def metadata_values(genuine: list[str]) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=100)
    authorization = st.one_of(
        printable,
        st.sampled_from(genuine).map(lambda token: f"Bearer {token}"),
        printable.map(lambda token: f"Bearer {token}"),
    )
    forwarded = st.one_of(printable, st.ip_addresses().map(str))
    return st.lists(
        st.one_of(
            st.tuples(st.just("authorization"), authorization),
            st.tuples(st.just("x-forwarded-for"), forwarded),
            st.tuples(st.just("grpcgateway-user-agent"), printable),
        ),
        max_size=3,
    ).map(tuple)


def call(live: LiveServer, method: MethodDescriptor, request: bytes, metadata: Any = ()) -> grpc.StatusCode:
    rpc = live.channel.unary_unary(f"/{AUTH_SERVICE_DESCRIPTOR.full_name}/{method.name}", None, None)
    try:
        rpc(request, metadata=metadata, timeout=30)
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        assert code not in FORBIDDEN, (method.name, request[:100], metadata, error)
        return code
    return grpc.StatusCode.OK


def assert_still_serving(live: LiveServer) -> None:
    health = health_pb2_grpc.HealthStub(live.channel)
    answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("name", list(METHODS))
def test_generated_requests_never_fail_internally(live, name):
    method = METHODS[name]

    @FUZZ
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        request = data.draw(message_values(method.input_type, live.genuine), label="request")
        metadata = data.draw(metadata_values(live.genuine), label="metadata")
        call(live, method, request.SerializeToString(), metadata)

    fuzz()
    assert_still_serving(live)


@pytest.mark.parametrize("name", list(METHODS))
def test_random_bytes_on_the_wire_never_fail_internally(live, name):
    method = METHODS[name]

    @FUZZ
    @given(body=st.binary(max_size=300))
    def fuzz(body: bytes) -> None:
        call(live, method, body)

    fuzz()
    assert_still_serving(live)


@pytest.mark.parametrize("name", list(METHODS))
def test_a_request_past_the_message_limit_is_resource_exhausted(live, name):
    assert (
        call(live, METHODS[name], b"\x0a\x80\xa2\x04" + b"A" * 70_000) == grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    assert_still_serving(live)
