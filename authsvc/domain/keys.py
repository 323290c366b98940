"""Signing keys: Ed25519 key pairs kept as PEM files in the keys directory, never in the code or repo.

Every key in the directory verifies and is published in the JWKS, so tokens signed before a rotation stay
valid until they expire. Each key's `kid` is its RFC 7638 JWK thumbprint. Running servers re-read the
directory every AUTHSVC_KEYS_RELOAD_SECONDS, so added, pruned and revoked keys reach them without a restart.

A key signs only once it has been published for the activation delay (AUTHSVC_KEY_ACTIVATION_DELAY_SECONDS):
the newest key created at least that long ago signs, so every replica and every verifier's JWKS cache knows
a `kid` before any token carries it. With no key that old (a new deployment, or the signer was revoked),
the oldest key signs at once: nothing older is left to use.

Pruning (`authsvc keys prune`) removes a key once no live token can carry its `kid`: a key stops signing when
its successor activates, and no token outlives its issue by more than the longest token lifetime.
Revoking (`authsvc keys revoke KID`) deletes a key at once and leaves a `KID.revoked` marker, so servers
name it in the log when its tokens are refused.

The directory also holds the refresh-token secret (`refresh-token.secret`): the MAC key of opaque refresh
tokens (refresh_tokens.py), created at first start beside the first key and shared by replicas the same way.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import secrets
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
_REVOKED_SUFFIX = ".revoked"
_REFRESH_SECRET_FILE = "refresh-token.secret"  # noqa: S105 (a file name)


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
    """The keys that verify tokens, which of them signs at a given moment, and the kids revoked."""

    def __init__(
        self,
        keys: list[SigningKey],
        *,
        activation_delay: timedelta = timedelta(0),
        revoked: frozenset[str] = frozenset(),
    ) -> None:
        if not keys:
            raise KeyStoreError("no signing key")
        self._keys = sorted(keys, key=lambda key: (key.created, key.kid))
        self._by_kid = {key.kid: key for key in self._keys}
        self._delay = activation_delay
        self.revoked = revoked

    def signing_at(self, now: datetime) -> SigningKey:
        """The newest key published for at least the activation delay; else the oldest key."""
        for key in reversed(self._keys):
            created = key.created_at
            if created is None or created + self._delay <= now:
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
        return [key.public_jwk() for key in reversed(self._keys)]


class LiveKeyRing:
    """The key ring a running server uses now; `reload()` swaps in what the directory holds."""

    def __init__(self, directory: Path, ring: KeyRing, activation_delay: timedelta) -> None:
        self.directory = directory
        self.ring = ring
        self._delay = activation_delay

    def reload(self) -> tuple[frozenset[str], frozenset[str]]:
        """Re-read the directory (blocking file reads: run it off the event loop) and return the kids
        added and removed. Raise KeyStoreError, keeping the ring as it was, when the directory or a key
        cannot be read or holds no key."""
        ring = load_keys(self.directory, self._delay)
        before = self.ring.kids
        self.ring = ring
        return ring.kids - before, before - ring.kids


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


def _write_private(path: Path, content: bytes) -> None:
    # 0600 from the first byte: a secret is never readable by others, not even briefly. Written under a
    # name readers skip, then linked into place whole: a replica reloading the directory (it takes no
    # lock) never reads half a key, and an existing file is never replaced.
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(draft, path)
    finally:
        draft.unlink()


def _write_key(directory: Path, now: datetime) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    stamp = now.astimezone(UTC).strftime(_STAMP_FORMAT)
    kid = thumbprint(private.public_key())
    path = directory / f"{stamp}-{kid}{_KEY_SUFFIX}"
    _write_private(path, pem)
    return _read_key(path)


def _prepare(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)


def _key_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir() if path.name.endswith(_KEY_SUFFIX))


def _revoked_kids(directory: Path) -> frozenset[str]:
    return frozenset(
        path.name.removesuffix(_REVOKED_SUFFIX)
        for path in directory.iterdir()
        if path.name.endswith(_REVOKED_SUFFIX)
    )


def load_keys(directory: Path, activation_delay: timedelta = timedelta(0)) -> KeyRing:
    """Read every key in `directory`, writing nothing. Raise KeyStoreError when it cannot be read or
    holds no key."""
    try:
        keys = [_read_key(path) for path in _key_files(directory)]
        revoked = _revoked_kids(directory)
    except OSError as exc:
        raise KeyStoreError(f"keys directory {directory} is not readable: {exc.strerror}") from exc
    if not keys:
        raise KeyStoreError(f"keys directory {directory} holds no signing key")
    return KeyRing(keys, activation_delay=activation_delay, revoked=revoked)


def load_or_create_keys(
    directory: Path, now: datetime, activation_delay: timedelta = timedelta(0)
) -> KeyRing:
    """Load every key in `directory`; create the first one (and the refresh-token secret) when there is
    none. Raise KeyStoreError.

    With keys and secret present nothing is written, so the directory may be a read-only mount shared by
    replicas.
    """
    try:
        paths = _key_files(directory) if directory.is_dir() else []
        if not paths or not (directory / _REFRESH_SECRET_FILE).is_file():
            _prepare(directory)
            with _locked(directory):
                if not _key_files(directory):
                    _write_key(directory, now)
                if not (directory / _REFRESH_SECRET_FILE).is_file():
                    _write_private(
                        directory / _REFRESH_SECRET_FILE, _b64url(secrets.token_bytes(32)).encode()
                    )
    except OSError as exc:
        raise KeyStoreError(f"keys directory {directory} is not usable: {exc.strerror}") from exc
    return load_keys(directory, activation_delay)


def load_refresh_secret(directory: Path) -> bytes:
    """The MAC key of refresh tokens (load_or_create_keys creates it). Raise KeyStoreError."""
    path = directory / _REFRESH_SECRET_FILE
    try:
        text = path.read_bytes().strip()
        secret = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except OSError as exc:
        raise KeyStoreError(f"cannot read the refresh-token secret {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise KeyStoreError(f"{path} is not a base64url secret") from exc
    if len(secret) < 32:
        raise KeyStoreError(f"{path} holds fewer than 32 bytes")
    return secret


def check_keys(directory: Path) -> int:
    """Read every key in `directory` without creating one; return how many (0 when there is none yet).
    Raise KeyStoreError when the directory or a key cannot be read (health checks, `authsvc check`)."""
    try:
        keys = [_read_key(path) for path in _key_files(directory)]
    except OSError as exc:
        raise KeyStoreError(f"keys directory {directory} is not readable: {exc.strerror}") from exc
    return len(keys)


def _add_key_locked(directory: Path, now: datetime) -> SigningKey:
    # The new key must sort after every existing one, or it would not be the one that signs next
    # (two rotations in one clock tick, or a clock that stepped back).
    latest = [key.created_at for key in map(_read_key, _key_files(directory))]
    newest = max((moment for moment in latest if moment is not None), default=None)
    if newest is not None and now <= newest:
        now = newest + timedelta(microseconds=1)
    return _write_key(directory, now)


def add_key(directory: Path, now: datetime) -> SigningKey:
    """Create a new key, published at once and signing after the activation delay (`keys rotate`)."""
    try:
        _prepare(directory)
        with _locked(directory):
            return _add_key_locked(directory, now)
    except OSError as exc:
        raise KeyStoreError(f"keys directory {directory} is not usable: {exc.strerror}") from exc


def revoke_key(
    directory: Path, kid: str, now: datetime, activation_delay: timedelta
) -> tuple[SigningKey, SigningKey | None]:
    """Delete the key `kid` and mark it revoked (`keys revoke`); return it, and the key added to replace
    it when it was the one signing (or the last one). Raise KeyStoreError when there is no such key."""
    try:
        _prepare(directory)
        with _locked(directory):
            found = {key.kid: (key, path) for key, path in ((_read_key(p), p) for p in _key_files(directory))}
            if kid not in found:
                raise KeyStoreError(f"no signing key {kid} in {directory}")
            key, path = found[kid]
            ring = KeyRing([k for k, _ in found.values()], activation_delay=activation_delay)
            was_signing = ring.signing_at(now).kid == kid
            (directory / f"{kid}{_REVOKED_SUFFIX}").touch(mode=0o600)
            path.unlink()
            replacement = _add_key_locked(directory, now) if was_signing or len(found) == 1 else None
            return key, replacement
    except OSError as exc:
        raise KeyStoreError(f"keys directory {directory} is not usable: {exc.strerror}") from exc


def prune_keys(
    directory: Path, now: datetime, max_token_lifetime: timedelta, activation_delay: timedelta = timedelta(0)
) -> list[SigningKey]:
    """Delete every key whose successor took over (its creation plus the activation delay) more than
    `max_token_lifetime` before `now`, and return the deleted keys. The newest key, and any key whose
    successor's time is unknown, are kept.
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
                created = successor.created_at
                if created is not None and now - (created + activation_delay) > max_token_lifetime:
                    path.unlink()
                    removed.append(key)
            return removed
    except OSError as exc:
        raise KeyStoreError(f"keys directory {directory} is not usable: {exc.strerror}") from exc
