"""Signing keys: Ed25519 key pairs kept as PEM files in the keys directory, never in the code or repo.

The newest key signs; every key in the directory verifies, so tokens signed before a rotation stay
valid until they expire. Each key's `kid` is its RFC 7638 JWK thumbprint.

Rotation (`authsvc keys rotate`) adds a key that servers sign with from their next start. Pruning
(`authsvc keys prune`) removes a key once no live token can carry its `kid`: a key stops signing when the
next newer key takes over, and no token outlives its issue by more than the longest token lifetime, so a
key whose successor was created more than max(access TTL, refresh TTL) ago is safe to drop. This counts
from the successor's creation, so restart every replica soon after rotating; a replica still signing with
the old key when it is pruned issues tokens that other replicas reject.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"
_KEY_SUFFIX = ".pem"
_STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"


class KeyStoreError(RuntimeError):
    """The keys directory cannot be read or written, or holds a file that is not an Ed25519 key."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The RFC 8037 OKP members of a public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}


def thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace."""
    canonical = json.dumps(public_jwk(public_key), sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


@dataclass(frozen=True)
class PublicJwk:
    """The public members of one key (RFC 7517 section 4, RFC 8037 for OKP keys)."""

    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str = "sig"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    public_key: Ed25519PublicKey
    created: str  # sortable UTC stamp from the file name: the newest key signs

    @property
    def created_at(self) -> datetime | None:
        """The creation time in the file name; None for a file named by hand."""
        try:
            return datetime.strptime(self.created, _STAMP_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            return None

    def public_jwk(self) -> PublicJwk:
        members = public_jwk(self.public_key)
        return PublicJwk(kty=members["kty"], crv=members["crv"], x=members["x"], kid=self.kid, alg=ALGORITHM)


class KeyRing:
    """The keys that verify tokens, and the one that signs new ones."""

    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise KeyStoreError("no signing key")
        self._keys = sorted(keys, key=lambda key: (key.created, key.kid))
        self._by_kid = {key.kid: key for key in self._keys}

    @property
    def signing(self) -> SigningKey:
        return self._keys[-1]

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        key = self._by_kid.get(kid)
        return None if key is None else key.public_key

    @property
    def keys(self) -> list[SigningKey]:
        return list(self._keys)

    def published(self) -> list[PublicJwk]:
        """Every key's public half, newest first (the order JWKS consumers try them in)."""
        return [key.public_jwk() for key in reversed(self._keys)]


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Replicas starting together on a shared directory must not each create a different first key.
    with (directory / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_key(path: Path) -> SigningKey:
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyStoreError(f"cannot read signing key {path.name}: {type(exc).__name__}") from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        raise KeyStoreError(f"{path.name} is not an Ed25519 private key")
    public = loaded.public_key()
    return SigningKey(thumbprint(public), loaded, public, path.name.split("-", 1)[0])


def _write_key(directory: Path, now: datetime) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    stamp = now.astimezone(UTC).strftime(_STAMP_FORMAT)
    kid = thumbprint(private.public_key())
    path = directory / f"{stamp}-{kid}{_KEY_SUFFIX}"
    # 0600 from the first byte: the key is never readable by others, not even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    return _read_key(path)


def _prepare(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)


def _key_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir() if path.name.endswith(_KEY_SUFFIX))


def load_or_create_keys(directory: Path, now: datetime) -> KeyRing:
    """Load every key in `directory`; create the first one when there is none. Raise KeyStoreError.

    With keys present nothing is written, so the directory may be a read-only mount shared by replicas.
    """
    try:
        paths = _key_files(directory) if directory.is_dir() else []
        if paths:
            return KeyRing([_read_key(path) for path in paths])
        _prepare(directory)
        with _locked(directory):
            paths = _key_files(directory)
            keys = [_read_key(path) for path in paths] if paths else [_write_key(directory, now)]
    except OSError as exc:
        raise KeyStoreError(f"keys directory {directory} is not usable: {exc.strerror}") from exc
    return KeyRing(keys)


def check_keys(directory: Path) -> int:
    """Read every key in `directory` without creating one; return how many (0 when there is none yet).
    Raise KeyStoreError when the directory or a key cannot be read (health checks, `authsvc check`)."""
    try:
        keys = [_read_key(path) for path in _key_files(directory)]
    except OSError as exc:
        raise KeyStoreError(f"keys directory {directory} is not readable: {exc.strerror}") from exc
    return len(keys)


def add_key(directory: Path, now: datetime) -> SigningKey:
    """Create a new key that becomes the signing key at the next start (`authsvc keys rotate`)."""
    try:
        _prepare(directory)
        with _locked(directory):
            # The new key must sort after every existing one, or it would not be the one that signs
            # (two rotations in one clock tick, or a clock that stepped back).
            latest = [key.created_at for key in map(_read_key, _key_files(directory))]
            newest = max((moment for moment in latest if moment is not None), default=None)
            if newest is not None and now <= newest:
                now = newest + timedelta(microseconds=1)
            return _write_key(directory, now)
    except OSError as exc:
        raise KeyStoreError(f"keys directory {directory} is not usable: {exc.strerror}") from exc


def prune_keys(directory: Path, now: datetime, max_token_lifetime: timedelta) -> list[SigningKey]:
    """Delete every key whose successor was created more than `max_token_lifetime` before `now`, and
    return the deleted keys. The newest key, and any key whose successor's time is unknown, are kept.
    """
    try:
        _prepare(directory)
        with _locked(directory):
            found = sorted(
                ((_read_key(path), path) for path in _key_files(directory)),
                key=lambda pair: (pair[0].created, pair[0].kid),
            )
            removed: list[SigningKey] = []
            for (key, path), (successor, _) in pairwise(found):
                took_over = successor.created_at
                if took_over is not None and now - took_over > max_token_lifetime:
                    path.unlink()
                    removed.append(key)
            return removed
    except OSError as exc:
        raise KeyStoreError(f"keys directory {directory} is not usable: {exc.strerror}") from exc
