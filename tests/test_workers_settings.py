"""The number of workers (AUTHSVC_WORKERS, AUTHSVC_GATEWAY_WORKERS) and the parent's hold on the port."""

from __future__ import annotations

import os
import socket

import pytest

from authsvc.gateway import GatewaySettings
from authsvc.gateway.settings import SettingsError as GatewaySettingsError
from authsvc.settings import Settings, SettingsError
from authsvc.supervisor import PortError, reserve_port


def test_one_worker_by_default_a_number_or_one_per_cpu() -> None:
    assert Settings.from_env({}).workers == 1
    assert Settings.from_env({"AUTHSVC_WORKERS": "3"}).workers == 3
    assert Settings.from_env({"AUTHSVC_WORKERS": "auto"}).workers == len(os.sched_getaffinity(0))
    assert GatewaySettings.from_env({}).workers == 1
    assert GatewaySettings.from_env({"AUTHSVC_GATEWAY_WORKERS": "2"}).workers == 2
    assert GatewaySettings.from_env({"AUTHSVC_GATEWAY_WORKERS": "AUTO"}).workers == len(
        os.sched_getaffinity(0)
    )


@pytest.mark.parametrize("value", ["0", "-2", "abc", "1.5"])
def test_other_numbers_of_workers_are_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="AUTHSVC_WORKERS"):
        Settings.from_env({"AUTHSVC_WORKERS": value})
    with pytest.raises(GatewaySettingsError, match="AUTHSVC_GATEWAY_WORKERS"):
        GatewaySettings.from_env({"AUTHSVC_GATEWAY_WORKERS": value})


def test_the_parent_resolves_port_zero_and_workers_can_bind_beside_it() -> None:
    port, held = reserve_port("127.0.0.1", 0)
    try:
        assert port > 0
        with socket.socket() as worker:  # as grpcio binds with grpc.so_reuseport
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind(("127.0.0.1", port))
            worker.listen()
        with socket.socket() as stranger, pytest.raises(OSError):  # without SO_REUSEPORT: in use
            stranger.bind(("127.0.0.1", port))
    finally:
        for sock in held:
            sock.close()


def test_a_port_someone_listens_on_is_refused_even_with_reuse_port() -> None:
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # another group of workers
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(PortError, match=f"cannot listen on 127.0.0.1:{port}"):
            reserve_port("127.0.0.1", port)
