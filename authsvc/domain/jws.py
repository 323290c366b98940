"""Compact JWS (RFC 7515) signed with EdDSA (RFC 8037): minting and verifying, the hot half of every token.

Both directions are short enough to do here, strictly, and cheaper than pyjwt (whose decoder checks the
base64url alphabet one character at a time in Python, and whose encoder re-serialises the header):
the alphabet by one regular expression, each part in its one canonical spelling (RFC 7515 section 2 and
RFC 4648 section 3.5: the unused low bits of the last character must be zero, so a token has exactly one
spelling), the `alg` exactly "EdDSA", the `typ` when the caller names one, the key by `kid`, the
signature over the exact signing input, and a JSON object as payload.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_COMPACT = re.compile(rb"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
ALGORITHM = "EdDSA"
# json.dumps(..., separators=(",", ":")), without building an encoder on every call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))
_URLSAFE = bytes.maketrans(b"+/", b"-_")


class InvalidJws(ValueError):
    """The token is not a well-formed compact JWS signed by one of our keys."""


class UnknownKey(InvalidJws):
    """The header names a `kid` that no key in the ring has (never had, or pruned or revoked)."""

    def __init__(self, kid: str | None) -> None:
        super().__init__("unknown key")
        self.kid = kid


def b64url(data: bytes) -> bytes:
    """Base64url without padding (RFC 7515 section 2)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


def _b64decode(segment: bytes) -> bytes:
    if len(segment) % 4 == 1:
        raise InvalidJws("bad base64url length")
    try:
        decoded = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidJws("bad base64url") from exc
    # Non-zero padding bits decode to the same bytes: refuse every spelling but the canonical one.
    if b64url(decoded) != segment:
        raise InvalidJws("non-canonical base64url")
    return decoded


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidJws("not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidJws("not a JSON object")
    return value


def _typ_matches(typ: object, expected: str) -> bool:
    # RFC 7515 section 4.1.9: a media type, compared case-insensitively, "application/" optional.
    if not isinstance(typ, str):
        return False
    lowered = typ.lower()
    return lowered in (expected, f"application/{expected}")


class CompactSigner:
    """Signs compact JWS with one key under one header, whose encoding is the same for every token: it is
    encoded once, here, not once per token."""

    __slots__ = ("_key", "_prefix")

    def __init__(self, header: Mapping[str, Any], key: Ed25519PrivateKey) -> None:
        self._prefix = _encoded_json(header) + b"."
        self._key = key

    def sign(self, claims: Mapping[str, Any]) -> str:
        """The compact JWS of `claims`."""
        signing_input = self._prefix + _encoded_json(claims)
        return (signing_input + b"." + b64url(self._key.sign(signing_input))).decode("ascii")


def _encoded_json(value: Mapping[str, Any]) -> bytes:
    # JSONEncoder escapes every non-ASCII character (ensure_ascii), so its text is ASCII already.
    return b64url(_COMPACT_JSON.encode(value).encode("ascii"))


def sign_compact(header: Mapping[str, Any], claims: Mapping[str, Any], key: Ed25519PrivateKey) -> str:
    """The compact JWS of `claims` under `header` (which must carry alg EdDSA and the key's `kid`)."""
    return CompactSigner(header, key).sign(claims)


def verify_compact(
    token: str, find_key: Callable[[str], Ed25519PublicKey | None], *, typ: str | None = None
) -> dict[str, Any]:
    """Return the payload of `token` if its EdDSA signature verifies with the key its `kid` names.

    With `typ`, the header's `typ` must name that type. Raise InvalidJws otherwise (any other algorithm,
    `none` included; a non-canonical spelling; a bad signature), UnknownKey for a `kid` not in the ring.
    """
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError as exc:
        raise InvalidJws("not ASCII") from exc
    if _COMPACT.fullmatch(raw) is None:
        raise InvalidJws("not a compact JWS")
    header_b64, payload_b64, signature_b64 = raw.split(b".")
    header = _json_object(_b64decode(header_b64))
    if header.get("alg") != ALGORITHM or "crit" in header:
        raise InvalidJws("unexpected algorithm or critical header")
    if typ is not None and not _typ_matches(header.get("typ"), typ):
        raise InvalidJws("unexpected token type")
    kid = header.get("kid")
    key = find_key(kid) if isinstance(kid, str) else None
    if key is None:
        raise UnknownKey(kid if isinstance(kid, str) else None)
    signature = _b64decode(signature_b64)
    payload = _b64decode(payload_b64)
    try:
        key.verify(signature, header_b64 + b"." + payload_b64)
    except InvalidSignature as exc:
        raise InvalidJws("bad signature") from exc
    return _json_object(payload)
