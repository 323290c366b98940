"""`authsvc serve --workers 2` as an operator runs it: one port, both processes serving, metrics summed,
SIGHUP and SIGTERM reaching every worker, a killed worker replaced, bad values refused in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.workers_process import WorkersProcess, call_on_fresh_channels, start_workers_process

pytestmark = pytest.mark.slow

GET_JWKS = "/authsvc.v1.AuthService/GetJwks"


def scrape(server: WorkersProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(server.metrics_url, timeout=30) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def jwks_answered(server: WorkersProcess) -> float:
    key = ("authsvc_grpc_requests_total", (("code", "OK"), ("rpc", GET_JWKS)))
    return scrape(server).get(key, 0.0)


def wait_for_count(server: WorkersProcess, expected: float, seconds: float = 30) -> None:
    """The metrics listener counts `expected` GetJwks (the last call's increment may land just after its
    answer); AssertionError with the last count otherwise."""
    deadline = time.monotonic() + seconds
    while (count := jwks_answered(server)) != expected and time.monotonic() < deadline:
        assert count < expected, f"counted {count} GetJwks, only {expected} were made"
        time.sleep(0.05)
    assert count == expected


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


@pytest.fixture
def workers(tmp_path):
    server = start_workers_process(tmp_path / "data", tmp_path / "serve.log")
    yield server
    server.kill()


def test_both_workers_take_connections_on_one_port_and_the_metrics_sum_them(workers):
    pids = workers.serving_pids()
    assert len(set(pids)) == 2
    assert workers.process.pid not in pids  # the parent serves no RPC
    calls = call_on_fresh_channels(workers.target, lambda: workers.answered_by() == set(pids))
    wait_for_count(workers, calls)
    # Both workers did answer some of them: the sum is over processes, not one worker's count.
    assert workers.answered_by() == set(pids)


def test_a_killed_worker_is_replaced_and_its_counts_are_kept(workers):
    first, second = workers.serving_pids()
    calls = call_on_fresh_channels(workers.target, lambda: workers.answered_by() == {first, second})
    wait_for_count(workers, calls)

    os.kill(first, signal.SIGKILL)
    replacement = workers.wait_for(
        "a replacement worker",
        lambda lines: {
            line["worker_pid"]
            for line in lines
            if line["message"] == "serving" and line.get("worker_pid") not in (None, first, second)
        },
    ).pop()
    assert any(
        line["message"] == "worker exited, starting another" and line["worker_pid"] == first
        for line in workers.lines()
    )
    calls += call_on_fresh_channels(workers.target, lambda: replacement in workers.answered_by())
    wait_for_count(workers, calls)  # what the dead worker counted is still in the sum
    assert workers.process.poll() is None


def test_sighup_reaches_every_worker(workers):
    pids = set(workers.serving_pids())
    workers.process.send_signal(signal.SIGHUP)
    workers.wait_for(
        "a reload in each worker",
        lambda lines: (
            {line.get("worker_pid") for line in lines if line["message"].startswith("SIGHUP")} >= pids
        ),
    )
    assert workers.process.poll() is None


def test_sigterm_lets_in_flight_calls_finish_then_every_process_exits_cleanly(tmp_path):
    # A login takes about 300 ms at cost 12: long enough to be in flight when SIGTERM comes.
    server = start_workers_process(tmp_path / "data", tmp_path / "serve.log", bcrypt_rounds="12")
    try:
        pids = server.serving_pids()
        channels = [grpc.insecure_channel(server.target) for _ in range(4)]  # spread over both workers
        try:
            stubs = [auth_pb2_grpc.AuthServiceStub(channel) for channel in channels]
            accounts = [{"email": f"user{n}@example.com", "password": "correct horse"} for n in range(4)]
            for stub, account in zip(stubs, accounts, strict=True):
                stub.Register(auth_pb2.RegisterRequest(**account), timeout=60)
            logins = [
                stub.Login.future(auth_pb2.LoginRequest(**account), timeout=60)
                for stub, account in zip(stubs, accounts, strict=True)
            ]
            time.sleep(0.1)
            assert server.stop() == 0
            assert all(login.result().refresh_token for login in logins)
        finally:
            for channel in channels:
                channel.close()
    finally:
        server.kill()
    assert all(gone(pid) for pid in pids)
    stopped = {line.get("worker_pid") for line in server.lines() if line["message"] == "stopped"}
    assert stopped == {*pids, None}  # every worker, and the parent (which tags no pid)


@pytest.mark.parametrize(
    ("arguments", "environment", "expected"),
    [
        (["--workers", "0"], {}, "AUTHSVC_WORKERS (serve --workers) must be a positive number or auto"),
        (["--workers", "many"], {}, "--workers 'many' is not valid"),
        ([], {"AUTHSVC_WORKERS": "abc"}, "AUTHSVC_WORKERS='abc' is not valid"),
    ],
)
def test_a_bad_number_of_workers_is_one_line_and_status_2(tmp_path, arguments, environment, expected):
    completed = subprocess.run(
        [sys.executable, "-m", "authsvc.cli", "serve", *arguments],
        env={**os.environ, "AUTHSVC_DATA_DIR": str(tmp_path), **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [completed.stderr.strip()]
    assert expected in completed.stderr


def test_a_worker_that_cannot_start_stops_the_parent_with_one_line(tmp_path):
    missing = tmp_path / "missing"
    completed = subprocess.run(
        [sys.executable, "-m", "authsvc.cli", "serve", "--workers", "2"],
        env={
            **os.environ,
            "AUTHSVC_DATA_DIR": str(tmp_path),
            "AUTHSVC_GRPC_LISTEN": "127.0.0.1:0",
            "AUTHSVC_BCRYPT_ROUNDS": "4",
            # The parent does not read TLS files; each worker does, when it binds.
            "AUTHSVC_TLS_CERT_FILE": str(missing / "server.crt"),
            "AUTHSVC_TLS_KEY_FILE": str(missing / "server.key"),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [completed.stderr.strip()]
    assert "cannot read the TLS certificate" in completed.stderr
