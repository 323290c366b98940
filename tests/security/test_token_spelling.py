"""Every token has exactly one spelling: each other spelling of the same bytes is refused everywhere.

Access tokens: a base64url part whose length is 2 (or 3) modulo 4 ends in a character carrying 4 (or 2)
spare bits that decode to nothing; RFC 4648 section 3.5 wants them zero, and lenient decoders (Python's
base64 among them) ignore them, so the last character can be swapped for another that decodes to the very
same bytes. Likewise "=" padding (which PyJWT accepts) and the standard alphabet's '+' and '/'. A respelt
signature still verifies, since the signature covers the header and payload as spelt; a respelt header or
payload does not, but is tried all the same. Every such spelling of a genuine token is refused by every
access-token place (gRPC and REST bearers, Introspect, both guards), and the genuine token is still
accepted afterwards.

An access token's header is 82 bytes (110 characters, 4 spare bits) and its signature 64 bytes (86
characters, 4 spare bits); the payload's length follows the email, so three users whose emails differ by
one character give payloads with 0, 4 and 2 spare bits.

Refresh tokens: the opaque format's one spelling (lower-case hex and UUID, a generation without leading
zeros) and the legacy JWT's canonical base64url.
"""

from __future__ import annotations

import base64
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from authsvc_proto.v1 import auth_pb2

from tests.conftest import ServerHandle
from tests.security.token_places import (
    ACCEPTED,
    ACCESS,
    GRPC_REFUSED,
    PLACES,
    REFRESH,
    Bench,
    Place,
    grpc_outcome,
    legacy_refresh_jwt,
    open_bench,
)

# A sweep of every other spelling of every token at every place through a live server.
pytestmark = pytest.mark.slow

URLSAFE = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
SPARE_BITS = {0: 0, 2: 4, 3: 2}  # by the part's length modulo 4 (1 is never a valid length)
PART_NAMES = ("header", "payload", "signature")
EMAILS = ("ada@example.com", "adam@example.com", "adama@example.com")


def lenient_decode(part: str) -> bytes:
    """What a forgiving decoder makes of a part: either alphabet, padding optional, spare bits ignored."""
    unpadded = part.rstrip("=").replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))


@dataclass(frozen=True)
class Spelling:
    description: str
    token: str


def other_spellings(token: str) -> list[Spelling]:
    """Every other spelling of `token`'s bytes that this module knows how to make."""
    parts = token.split(".")
    found: list[Spelling] = []

    def spelt(index: int, part: str, description: str) -> None:
        changed = [*parts[:index], part, *parts[index + 1 :]]
        found.append(Spelling(f"{PART_NAMES[index]}: {description}", ".".join(changed)))

    for index, part in enumerate(parts):
        spare = SPARE_BITS[len(part) % 4]
        if spare:
            last = URLSAFE.index(part[-1])
            assert last % (1 << spare) == 0, "the genuine token is not canonical"
            for low in range(1, 1 << spare):
                other = URLSAFE[last | low]
                spelt(
                    index, part[:-1] + other, f"last character {part[-1]!r} -> {other!r} ({spare} spare bits)"
                )
            padding = "=" * (-len(part) % 4)
            spelt(index, part + padding, f"padded with {padding!r}")
        standard = part.replace("-", "+").replace("_", "/")
        if standard != part:
            spelt(index, standard, "in the standard alphabet ('+' and '/')")
    # Exact: each spelling differs from the genuine token, yet decodes to the very same bytes.
    genuine = [lenient_decode(part) for part in parts]
    for spelling in found:
        assert spelling.token != token
        assert [lenient_decode(part) for part in spelling.token.split(".")] == genuine, spelling
    return found


@dataclass(frozen=True)
class Genuine:
    access_tokens: list[str]


@pytest.fixture
async def genuine(register, login) -> Genuine:
    tokens = []
    for email in EMAILS:
        await register(email)
        tokens.append((await login(email)).access_token)
    return Genuine(tokens)


@pytest.fixture
async def bench(auth_server: ServerHandle) -> AsyncIterator[Bench]:
    async with open_bench(auth_server) as opened:
        yield opened


def test_the_spellings_are_made_exactly():
    # A canonical part of each length class, and what other_spellings makes of it.
    header, payload, signature = (
        base64.urlsafe_b64encode(data).decode().rstrip("=") for data in (b"abc", b"\xff", b"\xff\xff")
    )
    assert (len(header) % 4, len(payload) % 4, len(signature) % 4) == (0, 2, 3)
    made = other_spellings(f"{header}.{payload}.{signature}")
    assert (header, payload, signature) == ("YWJj", "_w", "__8")
    tokens = {spelling.token for spelling in made}
    assert {f"YWJj._{last}.__8" for last in "xyz0123456789-_"} <= tokens  # 4 spare bits
    assert {f"YWJj._w.__{last}" for last in "9-_"} <= tokens  # 2 spare bits
    assert {"YWJj._w==.__8", "YWJj._w.__8="} <= tokens  # padding
    assert {"YWJj./w.__8", "YWJj._w.//8"} <= tokens  # the standard alphabet
    assert len(made) == 15 + 3 + 2 + 2


async def test_the_genuine_tokens_cover_every_length_class(genuine: Genuine):
    classes = {
        (name, len(part) % 4)
        for token in genuine.access_tokens
        for name, part in zip(PART_NAMES, token.split("."), strict=True)
    }
    assert classes == {("header", 2), ("payload", 0), ("payload", 2), ("payload", 3), ("signature", 2)}


ACCESS_PLACES = [pytest.param(place, id=place.name) for place in PLACES if place.expects == ACCESS]
REFRESH_PLACES = [pytest.param(place, id=place.name) for place in PLACES if place.expects == REFRESH]


@pytest.mark.parametrize("place", ACCESS_PLACES)
async def test_every_other_spelling_of_an_access_token_is_refused(
    bench: Bench, genuine: Genuine, place: Place
):
    wrong: list[str] = []
    count = 0
    for token in genuine.access_tokens:
        for spelling in other_spellings(token):
            count += 1
            outcome = await place.present(bench, spelling.token)
            if outcome != place.refusal:
                wrong.append(f"{spelling.description} {place}: {outcome!r}, expected {place.refusal!r}")
    assert not wrong, "\n".join(wrong)
    # 15 for each header and signature, 15 and 3 for two of the payloads, the padding of those 8 parts.
    assert count >= 6 * 15 + 15 + 3 + 8
    for token in genuine.access_tokens:  # the spelling was the only fault: the genuine tokens get in
        assert await place.present(bench, token) == ACCEPTED, place


def opaque_spellings(token: str) -> list[Spelling]:
    prefix, session_id, generation, mac = token.split("_")
    assert token == f"{prefix}_{session_id}_{generation}_{mac}"

    def spelt(
        description: str, *, p: str = prefix, s: str = session_id, g: str = generation, m: str = mac
    ) -> Spelling:
        return Spelling(description, f"{p}_{s}_{g}_{m}")

    found = [
        spelt("the MAC in upper-case hex", m=mac.upper()),
        spelt("the session id in upper case", s=session_id.upper()),
        spelt("the prefix in upper case", p=prefix.upper()),
        spelt("the whole token in upper case", p=prefix.upper(), s=session_id.upper(), m=mac.upper()),
        spelt("the generation with a leading zero", g=f"0{generation}"),
        spelt("the generation with two leading zeros", g=f"00{generation}"),
        spelt("the generation with a plus sign", g=f"+{generation}"),
    ]
    for spelling in found:  # each names the same session, generation and MAC to a lenient reader
        assert spelling.token != token
        lenient = spelling.token.lower().split("_")
        assert (lenient[1], int(lenient[2]), lenient[3]) == (session_id, int(generation), mac)
    return found


@pytest.mark.parametrize("place", REFRESH_PLACES)
async def test_every_other_spelling_of_an_opaque_refresh_token_is_refused(
    auth_server: ServerHandle, bench: Bench, register, login, place: Place
):
    """Spellings of the current token (generation 1) and of its spent parent (generation 0) alike: a
    reader that took the parent's spelling for the parent would call it a reuse and end the session."""
    await register()
    parent = (await login()).refresh_token
    current = (await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=parent))).refresh_token
    assert current.split("_")[2] == "1"
    wrong: list[str] = []
    for name, token in (("current", current), ("parent", parent)):
        for spelling in opaque_spellings(token):
            outcome = await place.present(bench, spelling.token)
            if outcome != place.refusal:
                wrong.append(
                    f"{spelling.description} ({name}) {place}: {outcome!r}, expected {place.refusal!r}"
                )
    assert not wrong, "\n".join(wrong)
    assert await place.present(bench, current) == ACCEPTED  # the session survived every attempt


async def test_every_other_spelling_of_a_legacy_refresh_jwt_is_refused_unread(
    auth_server: ServerHandle, register, login
):
    """The legacy JWT of a spent generation, in its genuine spelling, is read as a refresh token of the
    session (a reuse, which ends the session); in any other spelling it is not read at all."""
    await register()
    pair = await login()
    await auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token))
    legacy = legacy_refresh_jwt(auth_server, pair.access_token, 0)
    wrong: list[str] = []
    spellings = other_spellings(legacy)
    assert any("spare bits" in spelling.description for spelling in spellings)
    for spelling in spellings:
        for method in ("Refresh", "Logout"):
            call = getattr(auth_server.stub, method)(
                getattr(auth_pb2, f"{method}Request")(refresh_token=spelling.token)
            )
            outcome = await grpc_outcome(call)
            if outcome != GRPC_REFUSED:
                wrong.append(f"{spelling.description} to {method}: {outcome!r}, expected {GRPC_REFUSED!r}")
    assert not wrong, "\n".join(wrong)
    outcome = await grpc_outcome(auth_server.stub.Refresh(auth_pb2.RefreshRequest(refresh_token=legacy)))
    assert outcome == "UNAUTHENTICATED REFRESH_TOKEN_REUSED"
