"""The server's /metrics listener: Prometheus text counting RPCs and the domain's outcomes."""

from __future__ import annotations

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from authsvc.app.start import start_server
from tests.conftest import PASSWORD, make_settings
from tests.ops.metrics_text import scrape, value
from tests.status import expect_error

WITH_METRICS = pytest.mark.parametrize("server_settings", [{"metrics_listen": "127.0.0.1:0"}], indirect=True)
LOGIN = "/authsvc.v1.AuthService/Login"


def metrics_url(auth_server) -> str:
    listener = auth_server.running.metrics_listener
    assert listener is not None
    return f"http://127.0.0.1:{listener.port}/metrics"


@WITH_METRICS
async def test_every_outcome_series_exists_at_zero_before_any_call(auth_server):
    samples = await scrape(metrics_url(auth_server))
    for outcome in ("success", "invalid_credentials", "throttled"):
        assert value(samples, "authsvc_logins_total", outcome=outcome) == 0
    for outcome in ("rotated", "grace_replay", "reuse_detected"):
        assert value(samples, "authsvc_refreshes_total", outcome=outcome) == 0
    for reason in ("logout", "logout_all", "reuse_detected", "revoked_by_user"):
        assert value(samples, "authsvc_sessions_revoked_total", reason=reason) == 0
    for source in ("rpc", "health_check"):
        assert value(samples, "authsvc_database_errors_total", source=source) == 0
    assert value(samples, "authsvc_bcrypt_queue_depth") == 0


@WITH_METRICS
async def test_a_flow_is_counted_by_rpc_status_and_outcome(auth_server, register, login):
    stub = auth_server.stub
    await register()
    pair = await login()
    await expect_error(
        login(password="wrong password"), grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS"
    )
    child = await stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token))
    await stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token))  # inside the grace window
    auth_server.clock.advance(11)
    await expect_error(
        stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)),
        grpc.StatusCode.UNAUTHENTICATED,
        "REFRESH_TOKEN_REUSED",
    )
    second = await login()
    await stub.Logout(auth_pb2.LogoutRequest(refresh_token=second.refresh_token))
    assert child.refresh_token

    samples = await scrape(metrics_url(auth_server))
    assert value(samples, "authsvc_logins_total", outcome="success") == 2
    assert value(samples, "authsvc_logins_total", outcome="invalid_credentials") == 1
    assert value(samples, "authsvc_logins_total", outcome="throttled") == 0
    assert value(samples, "authsvc_refreshes_total", outcome="rotated") == 1
    assert value(samples, "authsvc_refreshes_total", outcome="grace_replay") == 1
    assert value(samples, "authsvc_refreshes_total", outcome="reuse_detected") == 1
    assert value(samples, "authsvc_sessions_revoked_total", reason="reuse_detected") == 1
    assert value(samples, "authsvc_sessions_revoked_total", reason="logout") == 1
    assert value(samples, "authsvc_grpc_requests_total", rpc=LOGIN, code="OK") == 2
    assert value(samples, "authsvc_grpc_requests_total", rpc=LOGIN, code="UNAUTHENTICATED") == 1
    assert value(samples, "authsvc_grpc_request_duration_seconds_count", rpc=LOGIN) == 3


@WITH_METRICS
async def test_logout_all_counts_every_session_it_revoked(auth_server, register, login):
    await register()
    pairs = [await login() for _ in range(3)]
    await auth_server.stub.LogoutAll(
        auth_pb2.LogoutAllRequest(), metadata=(("authorization", f"Bearer {pairs[0].access_token}"),)
    )
    samples = await scrape(metrics_url(auth_server))
    assert value(samples, "authsvc_sessions_revoked_total", reason="logout_all") == 3


@pytest.mark.parametrize(
    "server_settings", [{"metrics_listen": "127.0.0.1:0", "login_max_failures_per_account": 2}], indirect=True
)
async def test_a_throttled_login_counts_as_throttled(auth_server, register, login):
    await register()
    for _ in range(2):
        await expect_error(
            login(password="wrong password"), grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS"
        )
    await expect_error(login(), grpc.StatusCode.RESOURCE_EXHAUSTED, "THROTTLED")
    samples = await scrape(metrics_url(auth_server))
    assert value(samples, "authsvc_logins_total", outcome="invalid_credentials") == 2
    assert value(samples, "authsvc_logins_total", outcome="throttled") == 1
    assert value(samples, "authsvc_logins_total", outcome="success") == 0


async def test_two_servers_in_one_process_count_apart(tmp_path, clock):
    first = await start_server(make_settings(tmp_path / "one", metrics_listen="127.0.0.1:0"), clock)
    second = await start_server(make_settings(tmp_path / "two", metrics_listen="127.0.0.1:0"), clock)
    try:
        async with grpc.aio.insecure_channel(first.target) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            await stub.Register(auth_pb2.RegisterRequest(email="ada@example.com", password=PASSWORD))
            await stub.Login(auth_pb2.LoginRequest(email="ada@example.com", password=PASSWORD))
        counts = []
        for running in (first, second):
            assert running.metrics_listener is not None
            samples = await scrape(f"http://127.0.0.1:{running.metrics_listener.port}/metrics")
            counts.append(value(samples, "authsvc_logins_total", outcome="success"))
        assert counts == [1, 0]
    finally:
        await first.stop(1)
        await second.stop(1)


@WITH_METRICS
async def test_a_store_outage_counts_database_errors_and_unavailable_answers(auth_server, register, login):
    await register()
    pair = await login()
    await auth_server.running.store.close()
    await expect_error(
        auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)),
        grpc.StatusCode.UNAVAILABLE,
        "STORE_UNAVAILABLE",
    )
    samples = await scrape(metrics_url(auth_server))
    assert value(samples, "authsvc_database_errors_total", source="rpc") == 1
    refresh = "/authsvc.v1.AuthService/Refresh"
    assert value(samples, "authsvc_grpc_requests_total", rpc=refresh, code="UNAVAILABLE") == 1
