"""The composition root's parts on their own: services built over the stores they are given, and the
transport serving services it did not build (a real grpc.aio server on port 0)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from authsvc.app.resources import (
    SigningKeys,
    load_signing_keys,
    open_attempt_store,
    open_sql_store,
    prepare_schema,
)
from authsvc.app.services import build_services
from authsvc.domain.audit import ClientInfo
from authsvc.settings import Settings
from authsvc.store.sql import SqlStore
from authsvc.store.throttle import AttemptStore
from authsvc.transport.metrics import ServerMetrics
from authsvc.transport.server import bind_server
from tests.conftest import PASSWORD, ManualClock, make_settings

CLIENT = ClientInfo(user_agent="test", ip_address="127.0.0.1")


@dataclass
class Opened:
    settings: Settings
    store: SqlStore
    attempts: AttemptStore
    keys: SigningKeys
    clock: ManualClock


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[Opened]:
    """What start_server opens, opened by hand: a migrated SQLite store, its counters and the keys."""
    settings = make_settings(tmp_path / "data")
    clock = ManualClock()
    await prepare_schema(settings)
    store = await open_sql_store(settings)
    attempts = open_attempt_store(settings, store)
    try:
        yield Opened(settings, store, attempts, load_signing_keys(settings, clock()), clock)
    finally:
        await attempts.close()
        await store.close()


async def test_the_services_keep_their_data_in_the_stores_they_are_given(opened: Opened):
    services = build_services(opened.settings, opened.store, opened.attempts, opened.keys, opened.clock)
    try:
        registered = await services.auth.register("ada@example.com", PASSWORD, CLIENT)
        issued = await services.auth.login("ada@example.com", PASSWORD, CLIENT)
    finally:
        services.close()
    assert (await opened.store.get_user_by_email("ada@example.com")).id == registered.user_id
    [session] = await opened.store.list_sessions(registered.user_id, opened.clock())
    assert session.id == issued.session_id


async def test_the_transport_serves_services_built_without_it(opened: Opened):
    services = build_services(opened.settings, opened.store, opened.attempts, opened.keys, opened.clock)
    bound = bind_server(
        services.auth, services.sessions, opened.settings, gateway_secret=None, metrics=ServerMetrics()
    )
    await bound.server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{bound.port}") as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            email = "grace@example.com"
            registered = await stub.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD))
            tokens = await stub.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD))
    finally:
        await bound.server.stop(None)
        services.close()
    assert tokens.access_token and tokens.refresh_token
    assert (await opened.store.get_user_by_email(email)).id == registered.user_id
