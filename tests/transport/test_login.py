"""Login: a correct password opens a session; failures look and cost alike."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import bcrypt
import grpc
import jwt
import pytest
from authsvc_proto.v1 import auth_pb2

from authsvc.domain.passwords import hash_cost
from authsvc.store.sql import open_store
from tests.addresses import as_gateway
from tests.conftest import PASSWORD
from tests.status import expect_error


async def test_login_returns_a_bearer_pair_with_the_configured_lifetimes(register, login):
    user = await register()
    pair = await login()
    assert (pair.token_type, pair.expires_in, pair.refresh_expires_in) == ("Bearer", 900, 2592000)
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    assert claims["sub"] == user.user_id
    assert claims["sid"] == pair.session_id
    assert claims["type"] == "access"
    assert (claims["email"], claims["role"], claims["iss"], claims["aud"]) == (
        "ada@example.com",
        "user",
        "authsvc",
        "authsvc",
    )
    assert claims["exp"] - claims["iat"] == 900
    header = jwt.get_unverified_header(pair.access_token)
    assert header["alg"] == "EdDSA" and header["kid"]


async def test_each_login_opens_a_new_session(register, login):
    await register()
    first, second = await login(), await login()
    assert first.session_id != second.session_id


async def test_unknown_email_and_wrong_password_give_the_same_answer(register, login):
    await register()
    unknown = await expect_error(
        login("nobody@example.com"), grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS"
    )
    wrong = await expect_error(
        login(password="wrong password"), grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS"
    )
    assert unknown.details() == wrong.details() == "Incorrect email or password"


async def test_unknown_email_costs_a_bcrypt_check_like_a_wrong_password(auth_server, register, login):
    await auth_server.restart(bcrypt_rounds=10)
    await register()

    async def timed(email: str) -> float:
        start = time.perf_counter()
        with pytest.raises(grpc.aio.AioRpcError):
            await auth_server.stub.Login(auth_pb2.LoginRequest(email=email, password="whatever1"))
        return time.perf_counter() - start

    unknown = min([await timed("nobody@example.com") for _ in range(3)])
    wrong = min([await timed("ada@example.com") for _ in range(3)])
    # Both spend one cost-10 bcrypt check (tens of ms); a skipped check would take about 1 ms.
    assert unknown > wrong / 3, (unknown, wrong)


class BcryptSpy:
    """Records the cost of every bcrypt call (hashpw and checkpw) the server makes, in its pool threads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.costs: list[int] = []
        self._lock = threading.Lock()
        for name in ("hashpw", "checkpw"):
            monkeypatch.setattr(bcrypt, name, self._wrap(getattr(bcrypt, name)))

    def _wrap(self, function: Callable[[bytes, bytes], Any]) -> Callable[[bytes, bytes], Any]:
        def spied(password: bytes, salt_or_hash: bytes) -> Any:
            with self._lock:
                self.costs.append(hash_cost(salt_or_hash.decode("ascii")))
            return function(password, salt_or_hash)

        return spied

    def take(self) -> list[int]:
        with self._lock:
            taken, self.costs = sorted(self.costs), []
        return taken


async def test_after_a_cost_increase_an_old_accounts_wrong_password_costs_what_an_unknown_email_does(
    auth_server, register, monkeypatch
):
    """Registered at cost 4, served at cost 8: a wrong password checks the cost-4 hash, then a cost-8
    decoy, so it spends at least the one cost-8 check an unknown email spends (bcrypt work doubles with
    each step of cost: cost 4 alone would be 1/16 of it, and tell old accounts apart)."""
    await register()  # at cost 4
    await auth_server.restart(bcrypt_rounds=8)
    spy = BcryptSpy(monkeypatch)

    async def failed_login(email: str) -> list[int]:
        await expect_error(
            auth_server.stub.Login(auth_pb2.LoginRequest(email=email, password="wrong password")),
            grpc.StatusCode.UNAUTHENTICATED,
            "INVALID_CREDENTIALS",
        )
        return spy.take()

    unknown = await failed_login("nobody@example.com")
    old_account = await failed_login("ada@example.com")
    assert unknown == [8]
    assert old_account == [4, 8]
    assert max(old_account) == max(unknown) and sum(2**c for c in old_account) >= sum(2**c for c in unknown)
    # The right password re-hashes at cost 8; from then on a wrong one checks that hash alone.
    await auth_server.stub.Login(auth_pb2.LoginRequest(email="ada@example.com", password=PASSWORD))
    assert spy.take() == [4, 8]
    assert await failed_login("ada@example.com") == [8]


async def test_after_a_cost_increase_an_old_accounts_wrong_password_takes_as_long_as_an_unknown_email(
    auth_server, register
):
    """The same in wall time, with a generous bound: both spend one cost-10 check (tens of ms); without
    the decoy the old account's answer would take a cost-4 check, 1/64 of that."""
    await register()
    await auth_server.restart(bcrypt_rounds=10)

    async def timed(email: str) -> float:
        start = time.perf_counter()
        with pytest.raises(grpc.aio.AioRpcError):
            await auth_server.stub.Login(auth_pb2.LoginRequest(email=email, password="whatever1"))
        return time.perf_counter() - start

    unknown = min([await timed("nobody@example.com") for _ in range(3)])
    old_account = min([await timed("ada@example.com") for _ in range(3)])
    assert old_account > unknown / 3, (old_account, unknown)


@pytest.mark.parametrize(
    ("email", "password", "reason"),
    [
        ("not-an-email", PASSWORD, "INVALID_EMAIL"),
        ("ada@example.com", "", "INVALID_REQUEST"),
        ("ada@example.com", "x" * 100, "PASSWORD_TOO_LONG"),
    ],
)
async def test_malformed_logins_are_invalid_argument(register, login, email, password, reason):
    await register()
    await expect_error(login(email, password), grpc.StatusCode.INVALID_ARGUMENT, reason)


async def test_a_session_records_the_user_agent_and_the_forwarded_address(auth_server, register, login):
    # As the REST gateway sends them, with its secret (without it: test_forwarded_addresses.py).
    await register()
    pair = await login(
        metadata=as_gateway(("grpcgateway-user-agent", "Firefox/140"), ("x-forwarded-for", "203.0.113.9"))
    )
    store = await open_store(auth_server.settings.database_url)
    try:
        session = await store.get_session(pair.session_id)
    finally:
        await store.close()
    assert (session.user_agent, session.ip_address) == ("Firefox/140", "203.0.113.9")


async def test_a_raised_bcrypt_cost_rehashes_the_password_at_the_next_login(auth_server, register, login):
    user = await register()
    await auth_server.restart(bcrypt_rounds=5)
    await auth_server.stub.Login(auth_pb2.LoginRequest(email="ada@example.com", password=PASSWORD))
    store = await open_store(auth_server.settings.database_url)
    try:
        stored = await store.get_user(user.user_id)
    finally:
        await store.close()
    assert hash_cost(stored.password_hash) == 5
