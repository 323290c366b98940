"""Signing keys as the rules see them: which key signs at a moment, what the JWKS publishes, how long a
replaced key is kept, and the ring a running server swaps when its key source changes.

Every key verifies and is published in the JWKS, so tokens signed before a rotation stay valid until they
expire. Each key's `kid` is its RFC 7638 JWK thumbprint.

A key signs only once it has been published for the activation delay (AUTHSVC_KEY_ACTIVATION_DELAY_SECONDS):
the newest key created at least that long ago signs, so every replica and every verifier's JWKS cache knows
a `kid` before any token carries it. With no key that old (a new deployment, or the signer was revoked),
the oldest key signs at once: nothing older is left to use.

A key can be pruned once no live token can carry its `kid`: a key stops signing when its successor
activates, and no token outlives its issue by more than the longest token lifetime.

The keys themselves live in files, which are the store's (authsvc/store/key_files.py: reading, writing,
revoking, pruning, the refresh-token secret); this module gets their records and a source to re-read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from authsvc.store.key_files import KeyFiles, SigningKey, okp_members

ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class PublicJwk:
    """The public members of one key (RFC 7517 section 4, RFC 8037 for OKP keys)."""

    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str = "sig"


def public_jwk(key: SigningKey) -> PublicJwk:
    members = okp_members(key.public_key)
    return PublicJwk(kty=members["kty"], crv=members["crv"], x=members["x"], kid=key.kid, alg=ALGORITHM)


class KeyRing:
    """The keys that verify tokens, which of them signs at a given moment, and the kids revoked."""

    def __init__(
        self,
        keys: Sequence[SigningKey],
        *,
        activation_delay: timedelta = timedelta(0),
        revoked: frozenset[str] = frozenset(),
    ) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self._keys = sorted(keys, key=lambda key: (key.created, key.kid))
        # Parsed once: signing_at runs for every token minted.
        self._newest_first = [(key.created_at, key) for key in reversed(self._keys)]
        self._by_kid = {key.kid: key for key in self._keys}
        self.activation_delay = activation_delay
        self.revoked = revoked

    @classmethod
    def from_files(cls, files: KeyFiles, activation_delay: timedelta = timedelta(0)) -> KeyRing:
        return cls(files.keys, activation_delay=activation_delay, revoked=files.revoked)

    def signing_at(self, now: datetime) -> SigningKey:
        """The newest key published for at least the activation delay; else the oldest key."""
        for created, key in self._newest_first:
            if created is None or created + self.activation_delay <= now:
                return key
        return self._keys[0]

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        key = self._by_kid.get(kid)
        return None if key is None else key.public_key

    @property
    def keys(self) -> list[SigningKey]:
        return list(self._keys)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._by_kid)

    def published(self) -> list[PublicJwk]:
        """Every key's public half, newest first (the order JWKS consumers try them in)."""
        return [public_jwk(key) for key in reversed(self._keys)]


def signing_kid(keys: Sequence[SigningKey], now: datetime, activation_delay: timedelta) -> str:
    """The kid that signs at `now` among `keys` (what `keys revoke` asks before deleting one)."""
    return KeyRing(keys, activation_delay=activation_delay).signing_at(now).kid


def prunable_before(now: datetime, max_token_lifetime: timedelta, activation_delay: timedelta) -> datetime:
    """Keys whose successor was created before this moment can go: the successor started signing an
    activation delay after its creation, and no token signed before then is still live."""
    return now - activation_delay - max_token_lifetime


class KeySource(Protocol):
    """Where the keys come from (the keys directory: store/key_files.py KeyDirectory)."""

    def read(self) -> KeyFiles:
        """Every key and revoked kid, now. Raise KeyStoreError when they cannot be read or there is no key."""
        ...


class LiveKeyRing:
    """The key ring a running server uses now; `reload()` swaps in what the source holds."""

    def __init__(self, source: KeySource, ring: KeyRing) -> None:
        self.source = source
        self.ring = ring

    def reload(self) -> tuple[frozenset[str], frozenset[str]]:
        """Re-read the source (blocking file reads: run it off the event loop) and return the kids added
        and removed. Raise KeyStoreError, keeping the ring as it was, when the source or a key cannot be
        read or holds no key."""
        ring = KeyRing.from_files(self.source.read(), self.ring.activation_delay)
        before = self.ring.kids
        self.ring = ring
        return ring.kids - before, before - ring.kids
