"""A server told to stop first says NOT_SERVING to the clients watching its health, and keeps answering
through the drain, so that they move their calls to other replicas before it stops accepting."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authsvc.app.start import start_server
from tests.conftest import make_settings

# Far longer than the test needs: the stop is cancelled once the drain has been seen to serve.
DRAIN_SECONDS = 60.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_a_stopping_server_says_not_serving_then_keeps_answering_through_the_drain(tmp_path):
    running = await start_server(make_settings(tmp_path / "data"))
    try:
        async with grpc.aio.insecure_channel(running.target) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
            assert (await watch.read()).status == SERVING
            stopping = asyncio.create_task(running.stop(1, drain_seconds=DRAIN_SECONDS))
            assert (await watch.read()).status == NOT_SERVING
            jwks = await auth_pb2_grpc.AuthServiceStub(channel).GetJwks(auth_pb2.GetJwksRequest(), timeout=10)
            assert jwks.keys
            assert not stopping.done()
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopping
            watch.cancel()
    finally:
        await running.stop(1)
