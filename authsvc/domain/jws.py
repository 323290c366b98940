"""Verifying compact JWS (RFC 7515) signed with EdDSA (RFC 8037): the hot half of every token check.

pyjwt mints our tokens, but its decoder checks the base64url alphabet one character at a time in
Python, twice per token when the `kid` must be read first: that cost more than the Ed25519 signature
check itself. Verification of our one algorithm is short enough to do here, strictly:
the alphabet by one regular expression, the `alg` exactly "EdDSA", the key by `kid`, the signature
over the exact signing input, and a JSON object as payload.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

_COMPACT = re.compile(rb"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
ALGORITHM = "EdDSA"


class InvalidJws(ValueError):
    """The token is not a well-formed compact JWS signed by one of our keys."""


def _b64decode(segment: bytes) -> bytes:
    if len(segment) % 4 == 1:
        raise InvalidJws("bad base64url length")
    try:
        return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidJws("bad base64url") from exc


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidJws("not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidJws("not a JSON object")
    return value


def verify_compact(token: str, find_key: Callable[[str], Ed25519PublicKey | None]) -> dict[str, Any]:
    """Return the payload of `token` if its EdDSA signature verifies with the key its `kid` names.

    Raise InvalidJws otherwise (any other algorithm, `none` included; unknown kid; bad signature).
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
    kid = header.get("kid")
    key = find_key(kid) if isinstance(kid, str) else None
    if key is None:
        raise InvalidJws("unknown key")
    try:
        key.verify(_b64decode(signature_b64), header_b64 + b"." + payload_b64)
    except InvalidSignature as exc:
        raise InvalidJws("bad signature") from exc
    return _json_object(_b64decode(payload_b64))
