"""kill -9 under load, then a restart on the same data: nothing the clients were told is lost.

Every acknowledged registration exists, every session the clients were told is revoked stays revoked,
and no session is half-rotated: each live session's last acknowledged refresh token still refreshes
(or, when its rotation had committed but the answer was lost in the crash, replays within the grace
window and gets the child back).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from tests.conftest import PASSWORD
from tests.server_process import start_server_process
from tests.status import error_info

pytestmark = pytest.mark.slow

WORKERS = 40
SETTINGS = {
    "refresh_grace_seconds": "120",
    "login_max_failures_per_address": "1000000",
    "register_max_per_address": "1000000",  # the workers register as fast as they can, all from 127.0.0.1
    "register_max_per_window": "1000000",
}


@dataclass
class Acknowledged:
    registered: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)  # session id -> last acknowledged refresh token
    revoked: set[str] = field(default_factory=set)
    logout_in_flight: set[str] = field(default_factory=set)
    errors_before_the_crash: list[str] = field(default_factory=list)


async def worker(target: str, number: int, acked: Acknowledged, crashed: asyncio.Event) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        try:
            for round_number in range(10_000):
                email = f"w{number}-{round_number}@example.com"
                await stub.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD))
                acked.registered.append(email)
                pair = await stub.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD))
                acked.tokens[pair.session_id] = pair.refresh_token
                for _ in range(3):
                    request = auth_pb2.RefreshRequest(refresh_token=acked.tokens[pair.session_id])
                    acked.tokens[pair.session_id] = (await stub.Refresh(request)).refresh_token
                if round_number % 2:
                    acked.logout_in_flight.add(pair.session_id)
                    await stub.Logout(auth_pb2.LogoutRequest(refresh_token=acked.tokens[pair.session_id]))
                    acked.revoked.add(pair.session_id)
                    acked.logout_in_flight.discard(pair.session_id)
        except grpc.aio.AioRpcError as error:
            if not crashed.is_set():
                acked.errors_before_the_crash.append(f"{error.code().name}: {error.details()}")


async def outcome(call) -> str:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        info = error_info(error)
        return info.reason if info else error.code().name
    return "OK"


async def test_a_killed_server_loses_nothing_it_acknowledged(tmp_path):
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    server = await asyncio.to_thread(start_server_process, data_dir, log, **SETTINGS)
    acked, crashed = Acknowledged(), asyncio.Event()
    workers = [asyncio.create_task(worker(server.target, n, acked, crashed)) for n in range(WORKERS)]
    try:
        for _ in range(600):  # until well under way (a second or two here), at most 30 s on a busy machine
            if len(acked.registered) >= 60 and len(acked.revoked) >= 20:
                break
            await asyncio.sleep(0.05)
    finally:
        crashed.set()
        await asyncio.to_thread(server.kill)
    await asyncio.wait_for(asyncio.gather(*workers), 30)
    assert acked.errors_before_the_crash == []
    assert len(acked.registered) >= 60 and len(acked.revoked) >= 20

    server = await asyncio.to_thread(start_server_process, data_dir, log, **SETTINGS)
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            for email in acked.registered:
                again = auth_pb2.RegisterRequest(email=email, password=PASSWORD)
                assert await outcome(stub.Register(again)) == "EMAIL_TAKEN", email
            for session_id in acked.revoked:
                request = auth_pb2.RefreshRequest(refresh_token=acked.tokens[session_id])
                assert await outcome(stub.Refresh(request)) == "SESSION_REVOKED", session_id
            for session_id, token in acked.tokens.items():
                if session_id in acked.revoked:
                    continue
                answer = await outcome(stub.Refresh(auth_pb2.RefreshRequest(refresh_token=token)))
                if session_id in acked.logout_in_flight:
                    assert answer in ("OK", "SESSION_REVOKED"), session_id  # the logout may have committed
                else:
                    assert answer == "OK", (session_id, answer)
    finally:
        await asyncio.to_thread(server.stop)
