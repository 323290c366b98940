"""The mail settings, read from the environment (to be folded into authsvc/settings.py).

Without AUTHSVC_SMTP_URL mail goes to files under the data dir (authsvc/mail/files.py), so `make run` needs
nothing; with it, AUTHSVC_MAIL_FROM and AUTHSVC_PUBLIC_URL must be set too, or real people would get mail
from `authsvc@localhost` with links to a developer's machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path

from authsvc.mail.smtp import SmtpConfig, parse_smtp_url

DEFAULT_MAIL_FROM = "authsvc@localhost"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"  # the sidecar under `make run`
DEFAULT_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class MailSettings:
    smtp_url: str = ""  # empty: mail goes to files
    mail_from: str = ""  # empty: DEFAULT_MAIL_FROM, without SMTP only
    public_url: str = ""  # empty: DEFAULT_PUBLIC_URL, without SMTP only
    retry_seconds: float = DEFAULT_RETRY_SECONDS
    templates_dir: Path | None = None  # None: the packaged templates

    def __post_init__(self) -> None:
        smtp = self.smtp  # parsed here so that a bad URL stops the start
        if smtp is not None:
            for variable, value in (
                ("AUTHSVC_MAIL_FROM", self.mail_from),
                ("AUTHSVC_PUBLIC_URL", self.public_url),
            ):
                if not value:
                    raise ValueError(f"{variable} must be set when AUTHSVC_SMTP_URL is")
        if "\r" in self.mail_from or "\n" in self.mail_from or "@" not in parseaddr(self.from_address)[1]:
            raise ValueError(
                f"AUTHSVC_MAIL_FROM must be an address (`Name <no-reply@example.com>`), "
                f"got {self.mail_from!r}"
            )
        if not self.links_base.startswith(("https://", "http://")):
            raise ValueError(f"AUTHSVC_PUBLIC_URL must be an http(s) URL, got {self.public_url!r}")
        if not (self.retry_seconds > 0 and math.isfinite(self.retry_seconds)):
            raise ValueError("AUTHSVC_MAIL_RETRY_SECONDS must be positive")
        if self.templates_dir is not None and not self.templates_dir.is_dir():
            raise ValueError(f"AUTHSVC_MAIL_TEMPLATES_DIR is not a directory: {self.templates_dir}")

    @property
    def smtp(self) -> SmtpConfig | None:
        """The SMTP server to send through, or None: mail goes to files."""
        if not self.smtp_url:
            return None
        try:
            return parse_smtp_url(self.smtp_url)
        except ValueError as exc:
            raise ValueError(f"AUTHSVC_SMTP_URL is not valid: {exc}") from None

    @property
    def from_address(self) -> str:
        return self.mail_from or DEFAULT_MAIL_FROM

    @property
    def links_base(self) -> str:
        """Where the links in mail point: AUTHSVC_PUBLIC_URL, without a trailing slash."""
        return (self.public_url or DEFAULT_PUBLIC_URL).rstrip("/")

    def describe(self) -> dict[str, str]:
        """The effective values for the start-up log, the SMTP password masked."""
        smtp = self.smtp
        return {
            "smtp_url": "" if smtp is None else smtp.describe(),
            "mail_from": self.from_address,
            "public_url": self.links_base,
            "mail_retry_seconds": str(self.retry_seconds),
            "mail_templates_dir": "" if self.templates_dir is None else str(self.templates_dir),
        }
