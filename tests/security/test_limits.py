"""The documented limits hold, and past them the answer is RESOURCE_EXHAUSTED, never INTERNAL or UNKNOWN."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import grpc
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from authsvc.app.start import start_server
from authsvc.transport import server as server_module
from tests.conftest import PASSWORD, ManualClock


async def test_calls_past_the_concurrent_rpc_limit_are_resource_exhausted(server_settings, monkeypatch):
    # The real limit is 2000; the same mechanism at 2 shows what a caller past it gets.
    monkeypatch.setattr(server_module, "MAX_CONCURRENT_RPCS", 2)
    settings = replace(server_settings, bcrypt_rounds=10, login_max_failures_per_address=1000)
    running = await start_server(settings, clock=ManualClock())
    try:
        async with grpc.aio.insecure_channel(running.target) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)

            async def register(number: int) -> grpc.StatusCode:
                request = auth_pb2.RegisterRequest(email=f"user{number}@example.com", password=PASSWORD)
                try:
                    await stub.Register(request)
                except grpc.aio.AioRpcError as error:
                    return error.code()
                return grpc.StatusCode.OK

            codes = await asyncio.gather(*(register(number) for number in range(12)))
    finally:
        await running.stop(1)
    assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, codes
    assert codes.count(grpc.StatusCode.OK) >= 2
