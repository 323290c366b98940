"""A client that knows only what server reflection tells it runs the whole flow (as grpcurl would)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase


def _run_flow_by_reflection(target: str) -> dict[str, Any]:
    with grpc.insecure_channel(target) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        service = pool.FindServiceByName("authsvc.v1.AuthService")

        def call(
            name: str, body: dict[str, Any], metadata: tuple[tuple[str, str], ...] = ()
        ) -> dict[str, Any]:
            method = service.methods_by_name[name]
            request_class = message_factory.GetMessageClass(method.input_type)
            response_class = message_factory.GetMessageClass(method.output_type)
            rpc = channel.unary_unary(
                f"/{service.full_name}/{name}",
                request_serializer=request_class.SerializeToString,
                response_deserializer=response_class.FromString,
            )
            answer = rpc(json_format.ParseDict(body, request_class()), metadata=metadata, timeout=10)
            return json_format.MessageToDict(
                answer, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            )

        credentials = {"email": "ada@example.com", "password": "correct horse"}
        results = {"register": call("Register", credentials), "login": call("Login", credentials)}
        second = call("Login", credentials)
        results["refresh"] = call("Refresh", {"refresh_token": results["login"]["refresh_token"]})
        results["logout"] = call("Logout", {"refresh_token": results["refresh"]["refresh_token"]})
        bearer = (("authorization", f"Bearer {second['access_token']}"),)
        results["logout_all"] = call("LogoutAll", {}, bearer)
        return results


async def test_the_whole_flow_runs_through_reflection_alone(auth_server):
    results = await asyncio.to_thread(_run_flow_by_reflection, auth_server.target)
    assert results["register"]["email"] == "ada@example.com"
    assert results["login"]["token_type"] == "Bearer"
    assert results["login"]["expires_in"] == 900
    assert results["refresh"]["session_id"] == results["login"]["session_id"]
    assert results["logout"] == {"message": "Logged out successfully"}
    assert results["logout_all"] == {
        "message": "Logged out from all devices successfully",
        "revoked_sessions": 1,
    }
