"""Tokens: RFC 9068 access tokens (JWS, minted and checked here) and refresh tokens (opaque, MACed).

Access tokens are compact JWS with header `typ: at+jwt`, so any verifier can tell them from every other
JWT (RFC 9068 section 4); they are checked here before any database work: signature, algorithm, `typ` and
`kid` (jws.py), then issuer, audience and expiry against the injected clock.

Refresh tokens are opaque (refresh_tokens.py). Those issued before the upgrade are JWTs with
`type: refresh`; they are still read here until they expire (`AUTHSVC_REFRESH_TTL_SECONDS` after the
upgrade, 30 days by default), after which `_read_legacy_refresh` and its callers can be deleted.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeGuard

from authsvc.clock import to_epoch_seconds
from authsvc.domain.errors import TokenExpired, TokenInvalid, TokenTooLong
from authsvc.domain.jws import ALGORITHM, CompactSigner, InvalidJws, UnknownKey, verify_compact
from authsvc.domain.keys import KeyRing, LiveKeyRing, PublicJwk
from authsvc.domain.refresh_tokens import RefreshTokenMac, is_opaque

log = logging.getLogger("authsvc.tokens")

MAX_TOKEN_LENGTH = 4096  # our tokens are well under 1 KiB; anything longer is refused before parsing
_FUTURE_IAT_LEEWAY_SECONDS = 60  # replicas' clocks may differ a little
_REQUIRED_CLAIMS = ("iss", "aud", "sub", "sid", "jti", "iat", "exp")
_SIGNERS_KEPT = 16  # a ring holds a few keys; more signers than this are of keys rotated away
ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 (RFC 9068 section 2.1: a media type, not a secret)
ACCESS = "access"
REFRESH = "refresh"


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str
    email: str
    role: str
    expires_at: int
    # As the user's row said when the token was minted; False in tokens minted before the claim existed.
    email_verified: bool = False


@dataclass(frozen=True)
class RefreshClaims:
    """What a refresh token names. `user_id` is known only for legacy JWT refresh tokens."""

    session_id: str
    generation: int
    user_id: str | None = None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def token_hash(token: str) -> bytes:
    """What the store keeps instead of a refresh token: its SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenCodec:
    def __init__(
        self,
        keys: LiveKeyRing | KeyRing,
        refresh_secret: bytes,
        issuer: str,
        audience: str,
        client_id: str = "authsvc",
    ) -> None:
        self._keys = keys
        self._refresh = RefreshTokenMac(refresh_secret)
        self._issuer = issuer
        self._audience = audience
        self._client_id = client_id
        self._signers: dict[str, CompactSigner] = {}  # by kid: each key's header encoded once

    @property
    def _ring(self) -> KeyRing:
        return self._keys.ring if isinstance(self._keys, LiveKeyRing) else self._keys

    def published_keys(self) -> list[PublicJwk]:
        """The public keys that verify this codec's tokens (the ones about to sign included)."""
        return self._ring.published()

    def mint_access(
        self,
        *,
        user_id: str,
        session_id: str,
        email: str,
        role: str,
        email_verified: bool,
        now: datetime,
        ttl: timedelta,
    ) -> str:
        """An RFC 9068 access token, signed by the key active at `now`."""
        issued_at = to_epoch_seconds(now)
        claims = {
            "iss": self._issuer,
            "sub": user_id,
            "aud": self._audience,
            "exp": issued_at + int(ttl.total_seconds()),
            "iat": issued_at,
            "jti": secrets.token_hex(16),  # 128 random bits, as a UUID's 32 hex digits were
            "client_id": self._client_id,
            "sid": session_id,
            # Kept for guards released before RFC 9068 tokens, which check it; `typ` is the rule now.
            "type": ACCESS,
            "email": email,
            "role": role,
            "email_verified": email_verified,
        }
        return self._signer(now).sign(claims)

    def _signer(self, now: datetime) -> CompactSigner:
        """The signer of the key active at `now`. A kid is its key's thumbprint: one kid, one key."""
        key = self._ring.signing_at(now)
        signer = self._signers.get(key.kid)
        if signer is None:
            if len(self._signers) >= _SIGNERS_KEPT:
                self._signers.clear()
            header = {"alg": ALGORITHM, "typ": ACCESS_TOKEN_TYP, "kid": key.kid}
            signer = self._signers[key.kid] = CompactSigner(header, key.private_key)
        return signer

    def mint_refresh(self, session_id: str, generation: int) -> str:
        """The opaque refresh token of one generation of a session: the same arguments, the same token."""
        return self._refresh.mint(session_id, generation)

    def read_access(self, token: str, now: datetime) -> AccessClaims:
        claims = self._verify(token, ACCESS_TOKEN_TYP, now)
        email, role = claims.get("email"), claims.get("role")
        email_verified = claims.get("email_verified", False)
        if not isinstance(email, str) or not isinstance(role, str) or not isinstance(email_verified, bool):
            raise TokenInvalid()
        return AccessClaims(claims["sub"], claims["sid"], email, role, claims["exp"], email_verified)

    def read_refresh(self, token: str, now: datetime) -> RefreshClaims:
        """The session and generation a refresh token names. Its expiry is the session's, which the
        caller checks on the row (legacy JWTs also carry their own `exp`, checked here).

        Raise TokenInvalid, TokenTooLong, or TokenExpired (legacy tokens only).
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenTooLong()
        if not token:
            raise TokenInvalid("Token is required")
        if is_opaque(token):
            opaque = self._refresh.read(token)
            return RefreshClaims(opaque.session_id, opaque.generation)
        return self._read_legacy_refresh(token, now)

    def _read_legacy_refresh(self, token: str, now: datetime) -> RefreshClaims:
        """A refresh token issued before opaque ones: a JWT with `type: refresh` and `gen`."""
        claims = self._verify(token, None, now)
        generation = claims.get("gen")
        if claims.get("type") != REFRESH or not _is_int(generation) or generation < 0:
            raise TokenInvalid("Token is not a refresh token")
        return RefreshClaims(claims["sid"], generation, claims["sub"])

    def _verify(self, token: str, typ: str | None, now: datetime) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenTooLong()
        if not token:
            raise TokenInvalid("Token is required")
        ring = self._ring
        try:
            claims = verify_compact(token, ring.public_key, typ=typ)
        except UnknownKey as exc:
            if exc.kid in ring.revoked:
                log.warning("token refused: signed with revoked key", extra={"kid": exc.kid})
            raise TokenInvalid() from exc
        except InvalidJws as exc:
            raise TokenInvalid() from exc
        self._check_claims(claims)
        moment = to_epoch_seconds(now)
        not_before = claims.get("nbf", claims["iat"])
        if not _is_int(not_before) or not_before > moment + _FUTURE_IAT_LEEWAY_SECONDS:
            raise TokenInvalid("Token is not valid yet")
        if claims["exp"] <= moment:
            raise TokenExpired()
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        """Presence and types of the registered claims, issuer and audience (RFC 7519 4.1.3)."""
        if any(name not in claims for name in _REQUIRED_CLAIMS):
            raise TokenInvalid()
        audience = claims["aud"]
        if claims["iss"] != self._issuer or not (
            audience == self._audience or (isinstance(audience, list) and self._audience in audience)
        ):
            raise TokenInvalid("Token was issued for another service")
        if not all(isinstance(claims[name], str) for name in ("sub", "sid")):
            raise TokenInvalid()
        if not all(_is_int(claims[name]) for name in ("iat", "exp")):
            raise TokenInvalid()
