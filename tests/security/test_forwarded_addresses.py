"""A forwarded client address is believed only from the REST gateway (issue 15, item 3).

Loopback is no longer a trusted proxy: any process on the host (or behind an SSH tunnel, a port-forward)
could write `x-forwarded-for` and so escape the per-address limit or pin the limit on somebody else's
address. Now the server believes `x-forwarded-for` and `grpcgateway-user-agent` only from a caller that
shows the gateway secret (or a network in AUTHSVC_TRUSTED_PROXIES, set on purpose); any other caller is
recorded and throttled at its own peer address. The gateway sends the address it saw, replacing what the
HTTP client wrote, unless the HTTP peer is in AUTHSVC_HTTP_TRUSTED_PROXIES.

Each client connects from its own loopback address (tests/addresses.py): gRPC through a relay bound to it,
HTTP through a connector bound to it. Every test that involves the store runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from authsvc_proto.v1 import auth_pb2, auth_pb2_grpc

from authsvc import gateway_secret
from authsvc.gateway import RunningGateway
from tests.addresses import ClientsAt, as_gateway, forwarded_for, http_from, loopback
from tests.conftest import PASSWORD, ServerHandle
from tests.gateway.conftest import running_gateway
from tests.security.test_throttling import WRONG, attempt

ADA = "ada@example.com"
GATEWAY_PEER = "127.0.0.1"  # the in-process gateway's own address as the server sees it
LIMITED = {"login_max_failures_per_address": 8}


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def recorded(stub: auth_pb2_grpc.AuthServiceAsyncStub, metadata: Any = ()) -> tuple[str, str]:
    """Log Ada in with `metadata`; the (ip_address, user_agent) her new session shows in ListSessions."""
    pair = await stub.Login(auth_pb2.LoginRequest(email=ADA, password=PASSWORD), metadata=metadata)
    answer = await stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer(pair.access_token))
    (session,) = [s for s in answer.sessions if s.session_id == pair.session_id]
    return session.ip_address, session.user_agent


@pytest.fixture
async def clients(auth_server: ServerHandle) -> AsyncIterator[ClientsAt]:
    async with ClientsAt(auth_server.target) as opened:
        yield opened


# Direct gRPC callers.


async def test_a_direct_caller_is_recorded_at_its_own_address_whatever_it_forwards(
    auth_server, register, clients
):
    await register()
    stub = await clients.stub(loopback(2))
    forged = (("x-forwarded-for", "203.0.113.9"), ("grpcgateway-user-agent", "Forged/1.0"))
    address, user_agent = await recorded(stub, forged)
    assert address == loopback(2)
    assert user_agent.startswith("grpc-python")  # grpcio's own, not the forged one


async def test_the_gateway_secret_makes_the_forwarded_address_and_user_agent_believed(
    auth_server, register, clients
):
    await register()
    stub = await clients.stub(loopback(2))
    forwarded = as_gateway(("x-forwarded-for", "203.0.113.9"), ("grpcgateway-user-agent", "Firefox/140"))
    assert await recorded(stub, forwarded) == ("203.0.113.9", "Firefox/140")


@pytest.mark.parametrize(
    "proof",
    [
        pytest.param(((gateway_secret.METADATA_KEY, "x" * 43),), id="wrong secret"),
        pytest.param(((gateway_secret.METADATA_KEY, ""),), id="empty secret"),
        pytest.param((), id="no secret"),
    ],
)
async def test_a_wrong_or_missing_gateway_secret_is_not_believed(auth_server, register, clients, proof):
    await register()
    stub = await clients.stub(loopback(3))
    forged = (("x-forwarded-for", "203.0.113.9"), ("grpcgateway-user-agent", "Forged/1.0"), *proof)
    address, user_agent = await recorded(stub, forged)
    assert (address, user_agent.startswith("grpc-python")) == (loopback(3), True)


async def test_a_wrong_secret_is_logged_once_not_per_call(auth_server, register, clients, caplog):
    await register()
    stub = await clients.stub(loopback(3))
    wrong = ((gateway_secret.METADATA_KEY, "y" * 43), *forwarded_for("203.0.113.9"))
    with caplog.at_level(logging.WARNING, logger="authsvc.transport.gateway_trust"):
        for _ in range(3):
            await recorded(stub, wrong)
    warnings = [r for r in caplog.records if "wrong gateway secret" in r.getMessage()]
    assert len(warnings) == 1
    assert "y" * 43 not in caplog.text


@pytest.mark.parametrize("server_settings", [LIMITED], indirect=True)
async def test_a_direct_caller_rotating_forged_addresses_is_throttled_at_its_own(auth_server, clients):
    """The finding: 70 direct logins with made-up addresses were never throttled. Now all count against
    the caller's peer address; a caller elsewhere is not held."""
    guesser, other = await clients.stub(loopback(9)), await clients.stub(loopback(7))
    outcomes = [await attempt(guesser, f"user{i}@example.com", WRONG, f"198.51.100.{i}") for i in range(9)]
    assert outcomes == ["DENIED"] * 8 + ["THROTTLED"]
    assert await attempt(other, "fresh@example.com", WRONG) == "DENIED"


@pytest.mark.parametrize("server_settings", [LIMITED], indirect=True)
async def test_a_forged_address_cannot_lock_out_the_owner_of_that_address(auth_server, register, clients):
    """The finding's other half: a fixed made-up address, the victim's real one, could be throttled to
    lock the victim out. The guesses land on the guesser's own address instead."""
    await register()
    victim, guesser = loopback(2), loopback(9)
    guesses = [
        await attempt(await clients.stub(guesser), f"user{i}@example.com", WRONG, victim) for i in range(9)
    ]
    assert guesses[-1] == "THROTTLED"
    assert await attempt(await clients.stub(victim), ADA, PASSWORD) == "OK"


@pytest.mark.parametrize(
    "server_settings", [{"trusted_proxies": (ipaddress.ip_network("127.0.0.2/32"),)}], indirect=True
)
async def test_a_network_in_trusted_proxies_is_still_believed_and_no_other(auth_server, register, clients):
    """AUTHSVC_TRUSTED_PROXIES keeps the old behaviour for other proxies, for the networks it names."""
    await register()
    forwarded = (("x-forwarded-for", "203.0.113.9"), ("grpcgateway-user-agent", "Proxied/1.0"))
    assert await recorded(await clients.stub(loopback(2)), forwarded) == ("203.0.113.9", "Proxied/1.0")
    address, _ = await recorded(await clients.stub(loopback(3)), forwarded)
    assert address == loopback(3)


# Through the REST gateway.


async def rest_login(http: aiohttp.ClientSession, gateway: RunningGateway, **headers: str) -> dict[str, Any]:
    async with http.post(
        f"{gateway.url}/api/v1/auth/login", json={"email": ADA, "password": PASSWORD}, headers=headers
    ) as answer:
        assert answer.status == 200, await answer.text()
        pair: dict[str, Any] = await answer.json()
        return pair


async def rest_recorded(http: aiohttp.ClientSession, gateway: RunningGateway, **headers: str) -> str:
    """Log in over HTTP; the ip_address the new session shows over REST."""
    pair = await rest_login(http, gateway, **headers)
    authorization = {"Authorization": f"Bearer {pair['access_token']}"}
    async with http.get(f"{gateway.url}/api/v1/auth/sessions", headers=authorization) as answer:
        sessions = (await answer.json())["sessions"]
    (session,) = [s for s in sessions if s["session_id"] == pair["session_id"]]
    return str(session["ip_address"])


@asynccontextmanager
async def gateway_for(auth_server: ServerHandle, **overrides: Any) -> AsyncIterator[RunningGateway]:
    async with running_gateway(auth_server.target, **overrides) as gateway:
        yield gateway


async def test_through_the_gateway_the_http_clients_address_is_recorded(auth_server, register):
    await register()
    async with gateway_for(auth_server) as gateway, http_from(loopback(2)) as http:
        assert await rest_recorded(http, gateway) == loopback(2)
        # What the HTTP client writes is replaced: the gateway trusts no HTTP proxy by default.
        assert await rest_recorded(http, gateway, **{"X-Forwarded-For": "203.0.113.9"}) == loopback(2)


async def test_a_gateway_with_another_secret_is_not_believed(auth_server, register, tmp_path: Path):
    await register()
    other = tmp_path / "other" / gateway_secret.FILE_NAME
    async with gateway_for(auth_server, gateway_secret_file=other) as gateway, http_from(loopback(2)) as http:
        assert await rest_recorded(http, gateway) == GATEWAY_PEER
    assert other.exists()  # it made its own, as a gateway started apart from the server would


async def test_a_gateway_without_a_secret_is_not_believed(auth_server, register):
    await register()
    async with gateway_for(auth_server, gateway_secret_file=None) as gateway, http_from(loopback(2)) as http:
        assert await rest_recorded(http, gateway) == GATEWAY_PEER


async def test_behind_a_trusted_http_proxy_the_forwarded_client_is_recorded(auth_server, register):
    await register()
    ingress = (ipaddress.ip_network("127.0.0.3/32"),)
    async with gateway_for(auth_server, http_trusted_proxies=ingress) as gateway:
        async with http_from(loopback(3)) as through_ingress:
            assert await rest_recorded(through_ingress, gateway, **{"X-Forwarded-For": "203.0.113.9"}) == (
                "203.0.113.9"
            )
            # Walking from the right past the ingress's own entries to the nearest address outside it;
            # what the client itself wrote further left is not believed.
            chain = "192.0.2.66, 198.51.100.7, 127.0.0.3"
            assert await rest_recorded(through_ingress, gateway, **{"X-Forwarded-For": chain}) == (
                "198.51.100.7"
            )
            # No header: the proxy's own address.
            assert await rest_recorded(through_ingress, gateway) == loopback(3)
        async with http_from(loopback(4)) as direct:
            # A peer outside AUTHSVC_HTTP_TRUSTED_PROXIES: its X-Forwarded-For is ignored.
            assert await rest_recorded(direct, gateway, **{"X-Forwarded-For": "203.0.113.9"}) == loopback(4)


@pytest.mark.parametrize("server_settings", [LIMITED], indirect=True)
async def test_behind_a_trusted_ingress_one_clients_failures_do_not_lock_out_the_others(auth_server):
    """The finding: behind an ingress every REST client shared its address, so one attacker's failures
    locked out every user. With the ingress trusted, each client is limited at its own address."""
    ingress = (ipaddress.ip_network("127.0.0.3/32"),)
    async with (
        gateway_for(auth_server, http_trusted_proxies=ingress) as gateway,
        http_from(loopback(3)) as http,
    ):

        async def login_from(client: str, email: str) -> int:
            async with http.post(
                f"{gateway.url}/api/v1/auth/login",
                json={"email": email, "password": WRONG},
                headers={"X-Forwarded-For": client},
            ) as answer:
                return answer.status

        attacker, user = "198.51.100.66", "203.0.113.20"
        statuses = [await login_from(attacker, f"user{i}@example.com") for i in range(9)]
        assert statuses == [401] * 8 + [429]
        assert await login_from(user, "someone@example.com") == 401  # judged, not throttled


async def test_the_gateway_secret_is_sent_only_to_the_server_not_back(auth_server, register):
    await register()
    secret = gateway_secret.read(auth_server.settings.gateway_secret_path)
    login = {"email": ADA, "password": PASSWORD}
    async with (
        gateway_for(auth_server) as gateway,
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.url}/api/v1/auth/login", json=login) as answer,
    ):
        text = await answer.text()
        headers = "".join(f"{k}: {v}\n" for k, v in answer.headers.items())
    assert secret not in text and secret not in headers
