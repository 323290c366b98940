"""TLS and mutual TLS on the gRPC port, with certificates reloaded on demand (SIGHUP) without a restart.

grpc.aio takes `grpc.dynamic_ssl_server_credentials`: gRPC core calls the fetcher below at each new TLS
handshake, from one of its own threads, and a configuration it returns applies to that handshake and the
later ones. Connections already open keep the session they negotiated, so a reload drops nothing in flight.
`reload()` reads and checks the files first, so a half-written or mismatched pair is refused and the
certificate being served stays in place.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

log = logging.getLogger(__name__)


class TlsError(RuntimeError):
    """A certificate, key or CA file cannot be read, or the certificate and key do not belong together."""


@dataclass(frozen=True)
class TlsFiles:
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None  # set: mutual TLS, clients must present a certificate it signed


@dataclass(frozen=True)
class _Material:
    certificate_chain: bytes
    private_key: bytes
    client_ca: bytes | None
    subject: str


def read_material(files: TlsFiles) -> _Material:
    """Read and check the PEM files. Raise TlsError naming the file at fault; the message holds no key."""
    chain = _read(files.cert_file, "certificate")
    key = _read(files.key_file, "private key")
    client_ca = _read(files.client_ca_file, "client CA") if files.client_ca_file is not None else None
    try:
        certificates = x509.load_pem_x509_certificates(chain)
    except ValueError as exc:
        raise TlsError(f"{files.cert_file} holds no PEM certificate") from exc
    try:
        private_key = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as exc:
        raise TlsError(f"{files.key_file} holds no unencrypted PEM private key") from exc
    public_der = serialization.PublicFormat.SubjectPublicKeyInfo
    if certificates[0].public_key().public_bytes(
        serialization.Encoding.DER, public_der
    ) != private_key.public_key().public_bytes(serialization.Encoding.DER, public_der):
        raise TlsError(f"{files.key_file} is not the private key of the certificate in {files.cert_file}")
    if client_ca is not None:
        try:
            x509.load_pem_x509_certificates(client_ca)
        except ValueError as exc:
            raise TlsError(f"{files.client_ca_file} holds no PEM certificate") from exc
    return _Material(chain, key, client_ca, certificates[0].subject.rfc4514_string())


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read the TLS {what} {path}: {exc.strerror}") from exc


def _configuration(material: _Material) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(material.private_key, material.certificate_chain)], root_certificates=material.client_ca
    )


class CertificateReloader:
    """Server credentials whose certificate, key and client CA can be re-read while serving."""

    def __init__(self, files: TlsFiles) -> None:
        self._files = files
        self._lock = threading.Lock()
        self._pending: grpc.ServerCertificateConfiguration | None = None
        material = read_material(files)
        self.subject = material.subject
        self._initial = _configuration(material)

    @property
    def mutual(self) -> bool:
        return self._files.client_ca_file is not None

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._initial,
            self._fetch,  # type: ignore[arg-type]  # grpc-stubs omits the None that means "unchanged"
            require_client_authentication=self.mutual,
        )

    def reload(self) -> None:
        """Re-read the files; the next handshake uses them. Raise TlsError and keep serving the old ones."""
        material = read_material(self._files)
        with self._lock:
            self._pending = _configuration(material)
            self.subject = material.subject
        log.info("TLS certificate reloaded", extra={"subject": material.subject})

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        # Called by gRPC core on its own threads, at every handshake: None means "unchanged".
        with self._lock:
            pending, self._pending = self._pending, None
        return pending
