"""Sending through an SMTP server (aiosmtplib), as AUTHSVC_SMTP_URL says.

    smtp://HOST[:PORT]                         plain text, no TLS at all (port 25); for a relay on the
                                               same machine or a local mail catcher (Mailpit: port 1025)
    smtp+starttls://USER:PASSWORD@HOST[:PORT]  STARTTLS, required: a server that does not offer it is an
                                               error, never a silent fall-back to plain text (port 587)
    smtps://USER:PASSWORD@HOST[:PORT]          TLS from the first byte, "implicit TLS" (port 465)

User and password are optional and percent-decoded (`%40` for `@`; `/`, `?`, `#`, `:` and `%` in them
must be percent-encoded too). `smtp://` with a password is refused unless the host is a loopback address:
it would cross the network in plain text. One query parameter: `timeout` (seconds, default 30), which
bounds connecting and each command.

The server's certificate is checked against the system's CAs (OpenSSL's defaults: SSL_CERT_FILE or
SSL_CERT_DIR name others) and the host name of the URL.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from authsvc.store.outbox import MailRejected

Security = Literal["plain", "starttls", "tls"]
_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}
DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    def describe(self) -> str:
        """The URL for logs, the password masked."""
        scheme = next(name for name, (security, _) in _SCHEMES.items() if security == self.security)
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = "" if self.username is None else f"{self.username}:***@"
        return f"{scheme}://{user}{host}:{self.port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _timeout(query: str) -> float:
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError("its query must be `timeout=SECONDS`") from None
    unknown = set(params) - {"timeout"}
    if unknown:
        raise ValueError(f"unknown query parameter {sorted(unknown)[0]!r} (only `timeout` is known)")
    if "timeout" not in params:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = float(params["timeout"][-1])
    except ValueError:
        raise ValueError("timeout must be a number of seconds") from None
    if not 0 < seconds < float("inf"):
        raise ValueError("timeout must be positive")
    return seconds


def parse_smtp_url(url: str) -> SmtpConfig:
    """Read an SMTP URL (see the module's documentation). Raise ValueError with a reason that never
    repeats the password."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError("it must start with smtp://, smtp+starttls:// or smtps://")
    if "@" in url.partition("://")[2] and "@" not in parts.netloc:
        # An unencoded '/', '?' or '#' in the user or password ended the host part early.
        raise ValueError("percent-encode '/', '?' and '#' in the user and password")
    security, default_port = _SCHEMES[scheme]
    host = parts.hostname
    if not host:
        raise ValueError("it names no host")
    try:
        port = parts.port or default_port
    except ValueError:
        raise ValueError("its port is not a number from 1 to 65535") from None
    if parts.path not in ("", "/") or parts.fragment:
        raise ValueError("it must have no path")
    username = None if parts.username is None else unquote(parts.username)
    password = None if parts.password is None else unquote(parts.password)
    if username == "":
        raise ValueError("its user name is empty")
    if security == "plain" and password is not None and not _is_loopback(host):
        raise ValueError(
            f"smtp:// would send the password to {host} in plain text: use smtp+starttls:// or smtps://"
        )
    return SmtpConfig(host, port, security, username, password, _timeout(parts.query))


def _refused_for_good(exc: aiosmtplib.SMTPRecipientsRefused) -> bool:
    """Every recipient refused with a 5xx (no such mailbox, ...); a 4xx (greylisting, full) passes."""
    return bool(exc.recipients) and all(500 <= refusal.code < 600 for refusal in exc.recipients)


class SmtpSender:
    """A `MailSender` that opens one SMTP connection per message (mail is rare: no pool to go stale)."""

    def __init__(self, config: SmtpConfig, *, tls_context: ssl.SSLContext | None = None) -> None:
        self._config = config
        # None: aiosmtplib's default, the system's CAs and the host name checked.
        self._tls_context = tls_context

    @property
    def config(self) -> SmtpConfig:
        return self._config

    async def send(self, message: EmailMessage) -> None:
        config = self._config
        try:
            await aiosmtplib.send(
                message,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                use_tls=config.security == "tls",
                # False, not aiosmtplib's None (STARTTLS when offered): smtp:// means no TLS, and
                # smtp+starttls:// means it is required.
                start_tls=config.security == "starttls",
                timeout=config.timeout_seconds,
                tls_context=self._tls_context,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if _refused_for_good(exc):
                answers = "; ".join(f"{refusal.code} {refusal.message}" for refusal in exc.recipients)
                raise MailRejected(f"recipient refused: {answers}") from exc
            raise
