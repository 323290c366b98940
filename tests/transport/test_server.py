"""The server around the service: reflection, health, restarts on the same data, graceful shutdown."""

from __future__ import annotations

import asyncio
import stat

import grpc
from authsvc_proto.v1 import auth_pb2
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


async def _reflect(channel: grpc.aio.Channel, request: reflection_pb2.ServerReflectionRequest):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(iter([request]))
    async for answer in call:
        return answer
    raise AssertionError("no reflection answer")


async def test_reflection_lists_the_auth_and_health_services(auth_server):
    answer = await _reflect(auth_server.channel, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {service.name for service in answer.list_services_response.service}
    assert {"authsvc.v1.AuthService", "grpc.health.v1.Health"} <= names


async def test_reflection_describes_the_auth_service_without_proto_files(auth_server):
    answer = await _reflect(
        auth_server.channel,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="authsvc.v1.AuthService"),
    )
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in answer.file_descriptor_response.file_descriptor_proto
    ]
    auth = next(f for f in files if f.name == "authsvc_proto/v1/auth.proto")
    methods = {method.name for method in auth.service[0].method}
    assert methods == {
        "Register",
        "Login",
        "Refresh",
        "Logout",
        "LogoutAll",
        "ListSessions",
        "RevokeSession",
        "Introspect",
        "GetJwks",
        "GetProfile",
        "UpdateProfile",
        "ChangePassword",
        "ForgotPassword",
        "ResetPassword",
        "RequestEmailVerification",
        "VerifyEmail",
        "DeleteAccount",
        "SetUserDisabled",
    }


async def test_health_is_serving_once_started(auth_server):
    health = health_pb2_grpc.HealthStub(auth_server.channel)
    for service in ("", "authsvc.v1.AuthService"):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_restart_on_the_same_data_keeps_users_sessions_and_keys(auth_server, register, login):
    await register()
    pair = await login()
    await auth_server.restart()
    renewed = await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token))
    assert renewed.session_id == pair.session_id
    # The access token minted before the restart still verifies: the key was kept.
    answer = await auth_server.stub.LogoutAll(
        auth_pb2.LogoutAllRequest(), metadata=(("authorization", f"Bearer {pair.access_token}"),)
    )
    assert answer.revoked_sessions == 1


async def test_the_generated_signing_key_is_readable_only_by_its_owner(auth_server):
    keys = list(auth_server.settings.signing_keys_dir.glob("*.pem"))
    assert len(keys) == 1
    assert stat.S_IMODE(keys[0].stat().st_mode) == 0o600


async def test_shutdown_lets_in_flight_calls_finish(auth_server, register):
    await register()
    await auth_server.restart(bcrypt_rounds=12)  # a login now takes a few hundred ms
    login = asyncio.ensure_future(
        auth_server.stub.Login(
            auth_pb2.LoginRequest(email="ada@example.com", password="correct horse battery")
        )
    )
    await asyncio.sleep(0.05)
    await auth_server.running.stop(grace=10)
    pair = await login
    assert pair.refresh_token
    # Restart for the fixture's teardown, which stops the server again.
    await auth_server.restart(bcrypt_rounds=4)
