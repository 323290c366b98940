"""A stand-in gRPC AuthService for gateway tests that need statuses the real server rarely gives.

Each RPC answers from a table the test fills (`answers["Login"] = ...`), and every call's metadata is kept,
so tests can see what the gateway forwarded. Served with grpc health, like the real server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import grpc
from authsvc_proto.v1 import auth_pb2
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

Context = grpc.aio.ServicerContext[Message, Message]
Answer = Callable[[Message, Context], Awaitable[Message]]
SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]


@dataclass
class RecordedCall:
    rpc: str
    request: Message
    metadata: dict[str, str]


@dataclass
class FakeAuthServer:
    target: str
    port: int
    health: HealthServicer
    answers: dict[str, Answer] = field(default_factory=dict)
    calls: list[RecordedCall] = field(default_factory=list)


def details_metadata(
    code: grpc.StatusCode, message: str, reason: str | None = None, retry_seconds: float | None = None
) -> tuple[tuple[str, bytes], ...]:
    """`grpc-status-details-bin` as authsvc's server sends it: ErrorInfo, then RetryInfo when throttled."""
    status = status_pb2.Status(code=code.value[0], message=message)
    if reason is not None:
        packed = any_pb2.Any()
        packed.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="authsvc"))
        status.details.append(packed)
    if retry_seconds is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(retry_seconds * 1e9))
        packed = any_pb2.Any()
        packed.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        status.details.append(packed)
    return (("grpc-status-details-bin", status.SerializeToString()),)


def failing(
    code: grpc.StatusCode, message: str, reason: str | None = None, retry_seconds: float | None = None
) -> Answer:
    async def answer(request: Message, context: Context) -> Message:
        await context.abort(
            code, message, trailing_metadata=details_metadata(code, message, reason, retry_seconds)
        )
        raise AssertionError("abort returned")

    return answer


def _handler(server: FakeAuthServer, method_name: str) -> grpc.RpcMethodHandler[Message, Message]:
    method = SERVICE.methods_by_name[method_name]
    request_class = GetMessageClass(method.input_type)
    response_class = GetMessageClass(method.output_type)

    async def behaviour(request: Message, context: Context) -> Message:
        metadata = {
            key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)
        }
        server.calls.append(RecordedCall(method_name, request, metadata))
        answer = server.answers.get(method_name)
        if answer is None:
            return response_class()
        return await answer(request, context)

    return grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=request_class.FromString,
        response_serializer=response_class.SerializeToString,
    )


@asynccontextmanager
async def fake_auth_server(port: int = 0) -> AsyncIterator[FakeAuthServer]:
    """Serve the fake on 127.0.0.1:`port` (0 picks one) until the block ends."""
    server = grpc.aio.server()
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    health = HealthServicer()
    fake = FakeAuthServer(target=f"127.0.0.1:{bound}", port=bound, health=health)
    handlers = {name: _handler(fake, name) for name in SERVICE.methods_by_name}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),))
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    await server.start()
    try:
        yield fake
    finally:
        await server.stop(grace=None)
