"""The sidecar in production shape: dialing the server over (mutual) TLS, /metrics, and /healthz."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from authsvc.app.start import RunningServer, start_server
from authsvc.gateway import GatewaySettings, RunningGateway, build_app, start_gateway
from authsvc.gateway.settings import SettingsError
from tests.conftest import PASSWORD, make_settings
from tests.ops.conftest import Pki
from tests.ops.metrics_text import scrape, value

CREDENTIALS = {"email": "ada@example.com", "password": PASSWORD}


@dataclass
class Pair:
    server: RunningServer
    gateway: RunningGateway
    data_dir: Path


@pytest.fixture(params=["tls", "mutual"])
async def pair(request, pki: Pki, tmp_path: Path) -> AsyncIterator[Pair]:
    mutual = request.param == "mutual"
    settings = make_settings(
        tmp_path / "data",
        tls_cert_file=pki.server_cert,
        tls_key_file=pki.server_key,
        tls_client_ca_file=pki.ca_file if mutual else None,
    )
    server = await start_server(settings)
    gateway = await start_gateway(
        GatewaySettings(
            http_host="127.0.0.1",
            http_port=0,
            grpc_target=server.target,
            deadline_seconds=5,
            grpc_tls_ca_file=pki.ca_file,
            grpc_tls_cert_file=pki.client_cert if mutual else None,
            grpc_tls_key_file=pki.client_key if mutual else None,
        )
    )
    yield Pair(server, gateway, settings.data_dir)
    await gateway.stop()
    await server.stop(1)


async def test_the_sidecar_reaches_the_server_over_tls(pair):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{pair.gateway.url}/api/v1/auth/register", json=CREDENTIALS) as answer:
            assert answer.status == 201
        async with http.post(f"{pair.gateway.url}/api/v1/auth/login", json=CREDENTIALS) as answer:
            assert answer.status == 200
            assert (await answer.json())["token_type"] == "Bearer"
        async with http.get(f"{pair.gateway.url}/healthz") as answer:
            assert answer.status == 200


async def test_the_sidecar_metrics_count_requests_by_route_and_status(pair):
    url = pair.gateway.url
    async with aiohttp.ClientSession() as http:
        await (await http.post(f"{url}/api/v1/auth/register", json=CREDENTIALS)).read()
        await (await http.post(f"{url}/api/v1/auth/login", json=CREDENTIALS)).read()
        await (
            await http.post(f"{url}/api/v1/auth/login", json={**CREDENTIALS, "password": "wrong!!!!"})
        ).read()
        await (await http.get(f"{url}/no/such/route")).read()
    samples = await scrape(f"{url}/metrics")
    login = {"route": "/api/v1/auth/login", "method": "POST"}
    assert value(samples, "authsvc_http_requests_total", **login, status="200") == 1
    assert value(samples, "authsvc_http_requests_total", **login, status="401") == 1
    assert value(samples, "authsvc_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert value(samples, "authsvc_http_request_duration_seconds_count", **login) == 2


@pytest.mark.slow
async def test_healthz_turns_unavailable_while_a_signing_key_is_unreadable(pair):
    broken = pair.data_dir / "keys" / "99999999T000000000000Z-broken.pem"
    broken.write_text("not a key")
    assert await healthz_becomes(pair.gateway.url, 503)
    broken.unlink()
    assert await healthz_becomes(pair.gateway.url, 200)


async def healthz_becomes(url: str, status: int, seconds: float = 10.0) -> bool:
    async with aiohttp.ClientSession() as http:
        for _ in range(int(seconds * 10)):
            async with http.get(f"{url}/healthz") as answer:
                if answer.status == status:
                    return True
            await asyncio.sleep(0.1)
    return False


def test_a_client_certificate_without_its_key_is_refused():
    with pytest.raises(SettingsError, match="together"):
        GatewaySettings.from_env(
            {"AUTHSVC_GRPC_TLS_CA_FILE": "ca.crt", "AUTHSVC_GRPC_TLS_CERT_FILE": "c.crt"}
        )


def test_an_unreadable_ca_file_fails_the_start_with_the_variable_named(tmp_path):
    with pytest.raises(SettingsError, match="AUTHSVC_GRPC_TLS_CA_FILE"):
        build_app(GatewaySettings(grpc_tls_ca_file=tmp_path / "missing.crt"))
