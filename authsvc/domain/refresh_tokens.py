"""Opaque refresh tokens: `rt1_<session id>_<generation>_<MAC>`, presented only to authsvc.

A refresh token never leaves the client and authsvc, so it need not be a JWT, and must not parse as one
(a JWT library configured for our issuer and audience would otherwise take it for an access token). The MAC
is HMAC-SHA256 under the refresh-token secret kept beside the signing keys, over the session id and the
generation: 256 bits no one without the secret can produce, checked in constant time before any database
work. The token is a function of (session, generation) alone, so a grace-window replay of the parent
re-mints the very same child. The store keeps only the token's SHA-256 (tokens.token_hash).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from authsvc.domain.errors import TokenInvalid

PREFIX = "rt1"
# One spelling only: lower-case UUID, a generation without leading zeros, lower-case hex.
_FORMAT = re.compile(
    r"rt1_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_(0|[1-9][0-9]{0,9})_([0-9a-f]{64})"
)
_CONTEXT = b"authsvc refresh token v1"


@dataclass(frozen=True)
class OpaqueRefresh:
    session_id: str
    generation: int


class RefreshTokenMac:
    """Mints and checks opaque refresh tokens under one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the refresh-token secret must be at least 32 bytes")
        self._secret = secret

    def _mac(self, session_id: str, generation: int) -> str:
        message = b"\0".join((_CONTEXT, session_id.encode("ascii"), str(generation).encode("ascii")))
        return hmac.digest(self._secret, message, "sha256").hex()  # one call into OpenSSL, no HMAC object

    def mint(self, session_id: str, generation: int) -> str:
        """The refresh token of one generation of a session: the same arguments give the same token."""
        return f"{PREFIX}_{session_id}_{generation}_{self._mac(session_id, generation)}"

    def read(self, token: str) -> OpaqueRefresh:
        """The session and generation a token names; raise TokenInvalid unless its MAC is ours."""
        matched = _FORMAT.fullmatch(token)
        if matched is None:
            raise TokenInvalid()
        session_id, generation_text, mac = matched.groups()
        generation = int(generation_text)
        if not hmac.compare_digest(mac, self._mac(session_id, generation)):
            raise TokenInvalid()
        return OpaqueRefresh(session_id, generation)


def is_opaque(token: str) -> bool:
    return token.startswith(PREFIX + "_")
