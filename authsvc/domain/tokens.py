"""JWTs: minting and checking access and refresh tokens (RFC 7519), signed with the key ring.

Checks happen here, before any database work: signature, algorithm and `kid` (jws.py), then issuer,
audience, type and expiry against the injected clock. Refresh tokens are deterministic functions of
their claims (Ed25519 signatures are deterministic), which lets a grace-window replay re-mint the very
same child token.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeGuard

import jwt

from authsvc.clock import to_epoch_seconds
from authsvc.domain.errors import TokenExpired, TokenInvalid, TokenTooLong
from authsvc.domain.jws import InvalidJws, verify_compact
from authsvc.domain.keys import ALGORITHM, KeyRing, PublicJwk

MAX_TOKEN_LENGTH = 4096  # our tokens are well under 1 KiB; anything longer is refused before parsing
_FUTURE_IAT_LEEWAY_SECONDS = 60  # replicas' clocks may differ a little
_REQUIRED_CLAIMS = ("iss", "aud", "sub", "sid", "jti", "iat", "exp", "type")
ACCESS = "access"
REFRESH = "refresh"


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str
    email: str
    role: str
    expires_at: int


@dataclass(frozen=True)
class RefreshClaims:
    user_id: str
    session_id: str
    generation: int
    expires_at: int


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def token_hash(token: str) -> bytes:
    """What the store keeps instead of a refresh token: its SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenCodec:
    def __init__(self, keys: KeyRing, issuer: str, audience: str) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience

    def published_keys(self) -> list[PublicJwk]:
        """The public keys that verify this codec's tokens."""
        return self._keys.published()

    def mint_access(
        self, *, user_id: str, session_id: str, email: str, role: str, now: datetime, ttl: timedelta
    ) -> str:
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": user_id,
            "sid": session_id,
            "jti": uuid.uuid4().hex,
            "iat": to_epoch_seconds(now),
            "exp": to_epoch_seconds(now + ttl),
            "type": ACCESS,
            "email": email,
            "role": role,
        }
        return self._sign(claims)

    def mint_refresh(
        self, *, user_id: str, session_id: str, generation: int, issued_at: datetime, expires_at: datetime
    ) -> str:
        """The refresh token of one generation of a session: the same arguments give the same token."""
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": user_id,
            "sid": session_id,
            "jti": f"{session_id}.{generation}",
            "gen": generation,
            "iat": to_epoch_seconds(issued_at),
            "exp": to_epoch_seconds(expires_at),
            "type": REFRESH,
        }
        return self._sign(claims)

    def read_access(self, token: str, now: datetime) -> AccessClaims:
        claims = self._verify(token, ACCESS, now)
        email, role = claims.get("email"), claims.get("role")
        if not isinstance(email, str) or not isinstance(role, str):
            raise TokenInvalid()
        return AccessClaims(claims["sub"], claims["sid"], email, role, claims["exp"])

    def read_refresh(self, token: str, now: datetime) -> RefreshClaims:
        claims = self._verify(token, REFRESH, now)
        generation = claims.get("gen")
        if not _is_int(generation) or generation < 0:
            raise TokenInvalid()
        return RefreshClaims(claims["sub"], claims["sid"], generation, claims["exp"])

    def _sign(self, claims: dict[str, Any]) -> str:
        key = self._keys.signing
        return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})

    def _verify(self, token: str, expected_type: str, now: datetime) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenTooLong()
        if not token:
            raise TokenInvalid("Token is required")
        try:
            claims = verify_compact(token, self._keys.public_key)
        except InvalidJws as exc:
            raise TokenInvalid() from exc
        self._check_claims(claims, expected_type)
        moment = to_epoch_seconds(now)
        not_before = claims.get("nbf", claims["iat"])
        if not _is_int(not_before) or not_before > moment + _FUTURE_IAT_LEEWAY_SECONDS:
            raise TokenInvalid("Token is not valid yet")
        if claims["exp"] <= moment:
            raise TokenExpired()
        return claims

    def _check_claims(self, claims: dict[str, Any], expected_type: str) -> None:
        """Presence and types of the registered claims, issuer, audience (RFC 7519 4.1.3) and type."""
        if any(name not in claims for name in _REQUIRED_CLAIMS):
            raise TokenInvalid()
        audience = claims["aud"]
        if claims["iss"] != self._issuer or not (
            audience == self._audience or (isinstance(audience, list) and self._audience in audience)
        ):
            raise TokenInvalid("Token was issued for another service")
        if claims["type"] != expected_type:
            article = "an" if expected_type == ACCESS else "a"
            raise TokenInvalid(f"Token is not {article} {expected_type} token")
        if not all(isinstance(claims[name], str) for name in ("sub", "sid")):
            raise TokenInvalid()
        if not all(_is_int(claims[name]) for name in ("iat", "exp")):
            raise TokenInvalid()
