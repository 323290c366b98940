"""The gateway secret: how the gRPC server knows a call came from its own REST gateway.

The server believes the `x-forwarded-for` address (and the forwarded user agent) of a call only from the
gateway, or from a network in AUTHSVC_TRUSTED_PROXIES; any other caller is recorded and throttled at its
own peer address, whatever it writes. Under mutual TLS the gateway can be known by its client certificate
(AUTHSVC_GATEWAY_TLS_NAMES); otherwise it proves itself with this secret, sent as the `x-authsvc-gateway`
metadata entry of every call and compared by the server in constant time.

Both processes read one file, AUTHSVC_GATEWAY_SECRET_FILE (default `$AUTHSVC_DATA_DIR/gateway.secret`);
whichever starts first creates it: 32 random bytes, base64url, mode 0600 from the first byte, written under a
draft name and linked into place, so a process starting at the same moment reads the winner's whole file,
never half of one and never a second secret. An operator may also write the file (at least 32 printable
ASCII characters, no spaces), e.g. a secret mounted into both containers.

This module is shared by the server and the gateway, which must not import each other (pyproject's
import-linter contracts), so it imports nothing of authsvc.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path

METADATA_KEY = "x-authsvc-gateway"
FILE_NAME = "gateway.secret"
MIN_CHARACTERS = 32
_GENERATED_BYTES = 32

log = logging.getLogger(__name__)


class GatewaySecretError(RuntimeError):
    """The gateway secret file cannot be read or created, or does not hold a usable secret."""


def load_or_create(path: Path) -> str:
    """The secret in `path`, created (with its folder, 0700) when the file does not exist yet.

    Raise GatewaySecretError naming the file when it cannot be read or written, or holds no usable secret.
    """
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _create(path)
        return read(path)
    except OSError as exc:
        raise GatewaySecretError(f"the gateway secret file {path} is not usable: {exc.strerror}") from exc


def read(path: Path) -> str:
    """The secret in `path`, without creating it. Raise GatewaySecretError."""
    try:
        text = path.read_bytes().strip()
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise GatewaySecretError(f"cannot read the gateway secret file {path}: {exc.strerror}") from exc
    if len(text) < MIN_CHARACTERS or not all(0x21 <= byte <= 0x7E for byte in text):
        raise GatewaySecretError(
            f"the gateway secret file {path} must hold at least {MIN_CHARACTERS} printable ASCII "
            "characters without spaces"
        )
    if mode & 0o077:
        log.warning(
            "the gateway secret file is readable by other users: whoever reads it is believed about "
            "client addresses; make it 0600",
            extra={"path": str(path), "mode": oct(mode)},
        )
    return text.decode("ascii")


def _create(path: Path) -> None:
    secret = secrets.token_urlsafe(_GENERATED_BYTES).encode("ascii")
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secret + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # the other process was first: both use its secret
            os.link(draft, path)
    finally:
        draft.unlink()
