"""Signing keys on disk: Ed25519 key pairs kept as PEM files in the keys directory, never in the code or repo.

Each file is named `STAMP-KID.pem`: the UTC creation stamp (keys sort by it) and the key's `kid`, its RFC
7638 JWK thumbprint. Revoking (`authsvc keys revoke KID`) deletes a key at once and leaves a `KID.revoked`
marker, so servers name it in the log when its tokens are refused. Pruning (`authsvc keys prune`) deletes
keys replaced long ago. The directory also holds the refresh-token secret (`refresh-token.secret`): the MAC
key of opaque refresh tokens, created at first start beside the first key and shared by replicas the same
way. Running servers re-read the directory (`KeyDirectory.read`), so changes reach them without a restart.

Why the key record lives here: layers point down (domain -> store), so the store cannot import the
domain. What a file holds is the store's to say: `SigningKey` (kid, key pair, creation stamp) and
`KeyFiles` (the keys and the revoked kids) are plain data defined here, and the domain builds its KeyRing
from them (domain/keys.py). The thumbprint is here too because the file is named by it. The rules stay in
the domain and reach this module as arguments: which key signs (`revoke_key`'s `signer`) and how long a
replaced key is kept (`prune_keys`'s `replaced_before`).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_KEY_SUFFIX = ".pem"
_STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_REVOKED_SUFFIX = ".revoked"
_REFRESH_SECRET_FILE = "refresh-token.secret"  # noqa: S105 (a file name)


class KeyStoreError(RuntimeError):
    """The keys directory cannot be read or written, or holds a file that is not an Ed25519 key."""


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def okp_members(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The RFC 8037 OKP members of a public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)}


def thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace."""
    canonical = json.dumps(okp_members(public_key), sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


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


@dataclass(frozen=True)
class KeyFiles:
    """What the keys directory holds: its keys (at least one) and the kids revoked."""

    keys: tuple[SigningKey, ...]
    revoked: frozenset[str] = frozenset()


@dataclass(frozen=True)
class KeyDirectory:
    """The keys directory as the source a running server re-reads (domain/keys.py KeySource)."""

    path: Path

    def read(self) -> KeyFiles:
        return read_keys(self.path)


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


def read_keys(directory: Path) -> KeyFiles:
    """Read every key in `directory`, writing nothing. Raise KeyStoreError when it cannot be read or
    holds no key."""
    try:
        keys = tuple(_read_key(path) for path in _key_files(directory))
        revoked = _revoked_kids(directory)
    except OSError as exc:
        raise KeyStoreError(f"keys directory {directory} is not readable: {exc.strerror}") from exc
    if not keys:
        raise KeyStoreError(f"keys directory {directory} holds no signing key")
    return KeyFiles(keys, revoked)


def load_or_create_keys(directory: Path, now: datetime) -> KeyFiles:
    """Read every key in `directory`; create the first one (and the refresh-token secret) when there is
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
                    _write_private(directory / _REFRESH_SECRET_FILE, b64url(secrets.token_bytes(32)).encode())
    except OSError as exc:
        raise KeyStoreError(f"keys directory {directory} is not usable: {exc.strerror}") from exc
    return read_keys(directory)


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
    directory: Path, kid: str, now: datetime, signer: Callable[[Sequence[SigningKey]], str]
) -> tuple[SigningKey, SigningKey | None]:
    """Delete the key `kid` and mark it revoked (`keys revoke`); return it, and the key added to replace
    it when it was the one signing (or the last one). `signer` names the kid that signs among the keys
    (the domain's rule, read under the directory's lock). Raise KeyStoreError when there is no such key."""
    try:
        _prepare(directory)
        with _locked(directory):
            found = {key.kid: (key, path) for key, path in ((_read_key(p), p) for p in _key_files(directory))}
            if kid not in found:
                raise KeyStoreError(f"no signing key {kid} in {directory}")
            key, path = found[kid]
            was_signing = signer([k for k, _ in found.values()]) == kid
            (directory / f"{kid}{_REVOKED_SUFFIX}").touch(mode=0o600)
            path.unlink()
            replacement = _add_key_locked(directory, now) if was_signing or len(found) == 1 else None
            return key, replacement
    except OSError as exc:
        raise KeyStoreError(f"keys directory {directory} is not usable: {exc.strerror}") from exc


def prune_keys(directory: Path, replaced_before: datetime) -> list[SigningKey]:
    """Delete every key whose successor was created before `replaced_before`, and return the deleted keys
    (the domain says how long a replaced key is kept: domain/keys.py `prunable_before`). The newest key,
    and any key whose successor's time is unknown, are kept.
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
                if created is not None and created < replaced_before:
                    path.unlink()
                    removed.append(key)
            return removed
    except OSError as exc:
        raise KeyStoreError(f"keys directory {directory} is not usable: {exc.strerror}") from exc
