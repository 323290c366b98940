"""Forged, altered and hostile tokens, through LogoutAll's bearer and Refresh's body.

Access tokens are attacked as JWTs (made with the server's real key, so only the attacked property is
wrong); refresh tokens are opaque and attacked as such, plus as forged JWTs of the legacy format.

Every attack answers UNAUTHENTICATED or INVALID_ARGUMENT (or, for a bearer past the documented metadata
limit, RESOURCE_EXHAUSTED); never INTERNAL or UNKNOWN. Cases already covered elsewhere, not repeated
here: alg none, another key, expired and malformed refresh tokens (tests/transport/test_refresh.py), an
expired access token and a refresh token as bearer (tests/transport/test_logout.py), an access token as
refresh token (test_refresh.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from authsvc_proto.v1 import auth_pb2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.rpc import error_details_pb2, status_pb2

from authsvc.domain.keys import KeyRing
from authsvc.domain.refresh_tokens import RefreshTokenMac
from authsvc.store.key_files import load_or_create_keys
from tests.security import raw_grpc
from tests.status import error_info, expect_error

INVALID = (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")
DAY = 86_400


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def header_of(token: str) -> dict[str, Any]:
    return jwt.get_unverified_header(token)


def hs256(claims: dict[str, Any], header: dict[str, Any], secret: bytes) -> str:
    """HS256 by hand: PyJWT rightly refuses to use a public key as an HMAC secret."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


class Forger:
    """Makes tokens with the server's real signing key, so that only the attacked property is wrong."""

    def __init__(self, keys_dir: Path) -> None:
        # The server's key already exists.
        ring = KeyRing.from_files(load_or_create_keys(keys_dir, datetime.now(UTC)))
        self.key = ring.signing_at(datetime.now(UTC))

    def sign(
        self,
        claims: dict[str, Any],
        kid: str | None = None,
        key: Ed25519PrivateKey | None = None,
        typ: str = "at+jwt",
    ) -> str:
        headers = {"kid": kid or self.key.kid, "typ": typ}
        return jwt.encode(claims, key or self.key.private_key, algorithm="EdDSA", headers=headers)

    def public_secrets(self) -> list[bytes]:
        public = self.key.public_key
        pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return [pem, raw, b64(raw).encode()]


def changed(claims: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**claims, **changes}


def tampered(token: str, **changes: Any) -> str:
    head, payload, signature = token.split(".")
    new_payload = changed(json.loads(unb64(payload)), **changes)
    return f"{head}.{b64(json.dumps(new_payload).encode())}.{signature}"


# Each attack turns a genuine token (of the kind the RPC expects) into a hostile one.
Attack = Callable[[str, Forger], list[str]]

ATTACKS: dict[str, tuple[Attack, tuple[grpc.StatusCode, str]]] = {
    "alg none": (
        lambda token, _: [
            jwt.encode(claims_of(token), "", algorithm="none", headers={"kid": header_of(token)["kid"]})
        ],
        INVALID,
    ),
    "HS256 with the public key as the secret": (
        lambda token, forger: [
            hs256(claims_of(token), {"alg": "HS256", "typ": "JWT", "kid": forger.key.kid}, secret)
            for secret in forger.public_secrets()
        ],
        INVALID,
    ),
    "a tampered payload with the original signature": (
        lambda token, _: [
            tampered(token, role="admin"),
            tampered(token, sub="00000000-0000-0000-0000-000000000000"),
            tampered(token, exp=claims_of(token)["exp"] + 365 * DAY),
        ],
        INVALID,
    ),
    "not valid yet": (
        lambda token, forger: [
            forger.sign(changed(claims_of(token), iat=claims_of(token)["iat"] + DAY)),
            forger.sign(changed(claims_of(token), nbf=claims_of(token)["iat"] + DAY)),
        ],
        INVALID,
    ),
    "a wrong issuer or audience": (
        lambda token, forger: [
            forger.sign(changed(claims_of(token), iss="evil")),
            forger.sign(changed(claims_of(token), aud="another-service")),
            forger.sign(changed(claims_of(token), aud=["another-service"])),
        ],
        INVALID,
    ),
    "an unknown kid": (
        lambda token, forger: [
            forger.sign(claims_of(token), kid="no-such-key"),
            forger.sign(claims_of(token), kid="no-such-key", key=Ed25519PrivateKey.generate()),
            jwt.encode(claims_of(token), forger.key.private_key, algorithm="EdDSA"),  # no kid at all
        ],
        INVALID,
    ),
    "a header that does not say at+jwt": (
        lambda token, forger: [
            forger.sign(claims_of(token), typ="JWT"),
            forger.sign(claims_of(token), typ="at+jwt+x"),
            jwt.encode(
                claims_of(token), forger.key.private_key, algorithm="EdDSA", headers={"kid": forger.key.kid}
            ),
        ],
        INVALID,
    ),
    "a token of about one megabyte": (
        lambda token, _: [token + "A" * (1 << 20)],
        # Past the documented limits: the 64 KiB message or 16 KiB metadata limit, or the token length.
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
    ),
}


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def rpc_outcome(call) -> tuple[grpc.StatusCode, str]:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        info = error_info(error)
        return error.code(), info.reason if info else ""
    return grpc.StatusCode.OK, ""


@pytest.fixture
async def genuine(register, login):
    await register()
    return await login()


@pytest.fixture
def forger(auth_server):
    return Forger(auth_server.settings.signing_keys_dir)


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_an_attacked_access_token_is_refused_as_a_bearer(auth_server, genuine, forger, attack):
    make, expected = ATTACKS[attack]
    for token in make(genuine.access_token, forger):
        outcome = await rpc_outcome(
            auth_server.stub.LogoutAll(auth_pb2.LogoutAllRequest(), metadata=bearer(token))
        )
        assert outcome == expected, (attack, token[:200])
    # The genuine session was not harmed: its own token still works.
    answer = await auth_server.stub.LogoutAll(
        auth_pb2.LogoutAllRequest(), metadata=bearer(genuine.access_token)
    )
    assert answer.revoked_sessions == 1


def _opaque_parts(token: str) -> tuple[str, str, int, str]:
    prefix, session_id, generation, mac = token.split("_")
    return prefix, session_id, int(generation), mac


def _legacy_refresh_claims(token: str, access_token: str) -> dict[str, Any]:
    _, session_id, generation, _ = _opaque_parts(token)
    claims = claims_of(access_token)
    return {
        "iss": claims["iss"],
        "aud": claims["aud"],
        "sub": claims["sub"],
        "sid": session_id,
        "jti": f"{session_id}.{generation}",
        "gen": generation,
        "iat": claims["iat"],
        "exp": claims["iat"] + 30 * DAY,
        "type": "refresh",
    }


# Each attack turns a genuine opaque refresh token (and the access token of its pair) into hostile ones.
RefreshAttack = Callable[[str, str, Forger], list[str]]

REFRESH_ATTACKS: dict[str, tuple[RefreshAttack, tuple[grpc.StatusCode, str]]] = {
    "another MAC": (
        lambda token, _a, _f: [token[:-64] + "0" * 64, token[:-1] + ("1" if token[-1] == "0" else "0")],
        INVALID,
    ),
    "the MAC of another generation or session": (
        lambda token, _a, _f: [
            token.replace(f"_{_opaque_parts(token)[2]}_", f"_{_opaque_parts(token)[2] + 1}_"),
            token.replace(_opaque_parts(token)[1], "00000000-0000-4000-8000-000000000000"),
        ],
        INVALID,
    ),
    "another spelling of the same token": (
        lambda token, _a, _f: [
            token.upper(),
            token.replace(f"_{_opaque_parts(token)[2]}_", f"_0{_opaque_parts(token)[2]}_"),
            token + "\n",
            " " + token,
        ],
        INVALID,
    ),
    "a MAC under another secret": (
        lambda token, _a, _f: [
            RefreshTokenMac(os.urandom(32)).mint(_opaque_parts(token)[1], _opaque_parts(token)[2])
        ],
        INVALID,
    ),
    "a forged JWT of the legacy refresh format": (
        lambda token, access, forger: [
            forger.sign(_legacy_refresh_claims(token, access), key=Ed25519PrivateKey.generate(), typ="JWT"),
            jwt.encode(_legacy_refresh_claims(token, access), "", algorithm="none"),
        ],
        INVALID,
    ),
    "an access token": (lambda _t, access, _f: [access], INVALID),
    "a token of about one megabyte": (
        lambda token, _a, _f: [token + "0" * (1 << 20)],
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
    ),
}


@pytest.mark.parametrize("attack", list(REFRESH_ATTACKS))
async def test_an_attacked_refresh_token_is_refused(auth_server, genuine, forger, attack):
    make, expected = REFRESH_ATTACKS[attack]
    for token in make(genuine.refresh_token, genuine.access_token, forger):
        outcome = await rpc_outcome(auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=token)))
        assert outcome == expected, (attack, token[:200])
    await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=genuine.refresh_token))


def delete_user_row(database: Path, user_id: str, foreign_keys: bool) -> None:
    """What an operator does by hand. With foreign keys on, the schema cascades to the user's sessions;
    off (the sqlite3 shell's default), the sessions stay behind without an owner."""
    connection = sqlite3.connect(database)
    try:
        connection.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        with connection:
            deleted = connection.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount
        assert deleted == 1
    finally:
        connection.close()


# The row is deleted with the sqlite3 shell's own driver, as an operator of the default store would.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("foreign_keys", [True, False], ids=["sessions cascaded", "sessions orphaned"])
async def test_the_tokens_of_a_deleted_user_are_refused(auth_server, register, login, foreign_keys):
    user = await register()
    pair = await login()
    delete_user_row(auth_server.settings.data_dir / "authsvc.db", user.user_id, foreign_keys)
    call = auth_server.stub.LogoutAll(auth_pb2.LogoutAllRequest(), metadata=bearer(pair.access_token))
    await expect_error(call, *INVALID)
    call = auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token))
    await expect_error(call, *INVALID)
    call = auth_server.stub.Logout(auth_pb2.LogoutRequest(refresh_token=pair.refresh_token))
    await expect_error(call, *INVALID)


def reason_of(answer: dict[bytes, bytes]) -> str:
    encoded = answer.get(b"grpc-status-details-bin", b"")
    status = status_pb2.Status.FromString(base64.b64decode(encoded + b"=" * (-len(encoded) % 4)))
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


@pytest.mark.parametrize(
    "value",
    [b"Bearer \xff\xfe\xfd", b"Bearer \xc3\x28", "Bearer ☃".encode()],
    ids=["invalid UTF-8", "truncated UTF-8 sequence", "valid UTF-8 but not ASCII"],
)
async def test_a_bearer_of_non_ascii_bytes_is_token_invalid(auth_server, genuine, value):
    # grpcio's client refuses to send such a header, so a bare HTTP/2 client sends it.
    logout_all = "/authsvc.v1.AuthService/LogoutAll"
    answer = await asyncio.to_thread(
        raw_grpc.call, auth_server.target, logout_all, b"", [(b"authorization", value)]
    )
    assert (answer.get(b"grpc-status"), reason_of(answer)) == (b"16", "TOKEN_INVALID")  # UNAUTHENTICATED
    # The same client with a genuine bearer gets through: the refusal was about the bytes.
    good = [(b"authorization", f"Bearer {genuine.access_token}".encode())]
    answer = await asyncio.to_thread(raw_grpc.call, auth_server.target, logout_all, b"", good)
    assert answer.get(b"grpc-status") == b"0"


@pytest.mark.parametrize("method", ["Refresh", "Logout"])
async def test_a_refresh_token_of_non_utf8_bytes_is_invalid_argument(auth_server, genuine, method):
    raw = auth_server.channel.unary_unary(f"/authsvc.v1.AuthService/{method}")
    token = genuine.refresh_token.encode()
    # Field 1 (refresh_token), length-delimited, holding the genuine token with invalid UTF-8 appended.
    hostile = token + b"\xff\xfe"
    message = b"\x0a" + _varint(len(hostile)) + hostile
    await expect_error(raw(message), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
