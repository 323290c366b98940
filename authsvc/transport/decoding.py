"""Registering a servicer with request decoding of our own.

grpcio's default decoding runs `Message.FromString` outside the handler: a corrupt message, or invalid
UTF-8 in a string field, then answers UNKNOWN and logs a traceback. Here every unary method of the
service descriptor gets a handler that receives the raw bytes and parses them itself, answering
INVALID_ARGUMENT (reason INVALID_REQUEST) when they are not a valid message, and turns whatever the
servicer raises into a status (errors.status_for_exception: the one place). Handlers are built from
the descriptor, so RPCs added to the proto are covered without touching this module; one the servicer
does not implement answers UNIMPLEMENTED.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from authsvc_proto.errors import rich_status
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from authsvc.transport.errors import Context, status_for_exception

Behaviour = Callable[[Message, Context], Awaitable[Message] | Message]
RawHandler = Callable[[bytes, Context], Awaitable[Message]]


async def _abort(context: Context, status: grpc.Status) -> None:
    await context.abort(status.code, status.details, status.trailing_metadata)


def _decoding(method: MethodDescriptor, behaviour: Behaviour) -> RawHandler:
    request_class = message_factory.GetMessageClass(method.input_type)

    async def handle(raw: bytes, context: Context) -> Message:
        try:
            request = request_class.FromString(raw)
        except DecodeError:
            await _abort(
                context,
                rich_status(
                    grpc.StatusCode.INVALID_ARGUMENT, "Request message is malformed", "INVALID_REQUEST"
                ),
            )
            raise  # not reached: abort raises
        try:
            answer = behaviour(request, context)
            return await answer if inspect.isawaitable(answer) else answer
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            status = status_for_exception(exc, method.full_name)
        await _abort(context, status)
        raise AssertionError("unreachable: abort raises")

    return handle


def method_handlers(servicer: Any, service: ServiceDescriptor) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    """One handler per method of `service`, decoding requests as described in the module docstring."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        if method.client_streaming or method.server_streaming:
            raise ValueError(f"{method.full_name}: only unary methods are supported")
        response_class = message_factory.GetMessageClass(method.output_type)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            _decoding(method, getattr(servicer, method.name)),
            request_deserializer=None,  # the handler receives the raw bytes
            response_serializer=response_class.SerializeToString,
        )
    return handlers


def add_servicer(servicer: Any, service: ServiceDescriptor, server: grpc.aio.Server) -> None:
    """Register `servicer` for every method of `service` on `server` (instead of the generated
    `add_..._to_server`, which decodes with grpcio's default)."""
    handlers = method_handlers(servicer, service)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    # grpc-stubs predates this method; the generated `add_..._to_server` calls it too.
    server.add_registered_method_handlers(service.full_name, handlers)  # type: ignore[attr-defined]
