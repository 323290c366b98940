"""The account mails, written from templates: a password reset and an email verification.

Each mail has two templates, `NAME.txt` and `NAME.html` (authsvc/mail/templates/, or a directory of one's
own with any of them: AUTHSVC_MAIL_TEMPLATES_DIR). The text template's first line is the subject
(`Subject: ...`), then a blank line, then the body. They are `string.Template`s with these placeholders:

- `$link`: the link to open (it carries the token);
- `$email`: the recipient's address;
- `$lifetime`: how long the link works, in words (`1 hour`, `30 minutes`, `2 days`);
- `$minutes`, `$hours`: the same in whole minutes and hours (rounded up).

In the HTML template every value is HTML-escaped (`&` in a link becomes `&amp;`, as an attribute needs).
An unknown placeholder, or a `$` that starts none, is refused when the templates are loaded.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from string import Template
from urllib.parse import quote

from authsvc.store.outbox import OutgoingMail

RESET = "reset"
VERIFY = "verify"
_NAMES = (RESET, VERIFY)
_SUBJECT_PREFIX = "Subject:"
_EXAMPLE_VALUES = {
    "link": "https://auth.example.com/account/reset?token=x",
    "email": "ada@example.com",
    "lifetime": "1 hour",
    "minutes": "60",
    "hours": "1",
}


def reset_link(public_url: str, token: str) -> str:
    """`{public}/account/reset?token=...`: the account page's form for a new password."""
    return f"{public_url.rstrip('/')}/account/reset?token={quote(token, safe='')}"


def verify_link(public_url: str, token: str) -> str:
    """`{public}/account/verify?token=...`: the account page's confirmation of an address."""
    return f"{public_url.rstrip('/')}/account/verify?token={quote(token, safe='')}"


def describe_lifetime(lifetime: timedelta) -> str:
    """`1 hour`, `30 minutes`, `2 days`: the largest whole unit, else minutes rounded up."""
    seconds = lifetime.total_seconds()
    if seconds <= 0:
        raise ValueError("a link's lifetime must be positive")
    for unit, size in (("day", 86_400), ("hour", 3600)):
        if seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


def _values(recipient: str, link: str, lifetime: timedelta) -> dict[str, str]:
    seconds = lifetime.total_seconds()
    return {
        "link": link,
        "email": recipient,
        "lifetime": describe_lifetime(lifetime),
        "minutes": str(math.ceil(seconds / 60)),
        "hours": str(math.ceil(seconds / 3600)),
    }


@dataclass(frozen=True)
class MailTemplate:
    """One mail's subject, plain-text body and HTML body."""

    subject: Template
    text: Template
    html: Template

    @classmethod
    def parse(cls, text: str, html_text: str, name: str) -> MailTemplate:
        """Split `NAME.txt` into subject and body; check both templates with example values."""
        first, _, body = text.partition("\n")
        if not first.startswith(_SUBJECT_PREFIX) or not body.startswith("\n"):
            raise ValueError(f"mail template {name}.txt must start with 'Subject: ...' and a blank line")
        template = cls(
            Template(first[len(_SUBJECT_PREFIX) :].strip()), Template(body[1:]), Template(html_text)
        )
        try:
            template.render(_EXAMPLE_VALUES)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"mail template {name}: unknown or malformed placeholder: {exc}") from exc
        return template

    def render(self, values: Mapping[str, str]) -> tuple[str, str, str]:
        """Subject, text body and HTML body; the HTML's values are escaped."""
        escaped = {key: html.escape(value, quote=True) for key, value in values.items()}
        subject = " ".join(self.subject.substitute(values).split())  # one line, whatever the values
        return subject, self.text.substitute(values), self.html.substitute(escaped)


@dataclass(frozen=True)
class MailTemplates:
    reset: MailTemplate
    verify: MailTemplate

    @classmethod
    def load(cls, directory: Path | None = None) -> MailTemplates:
        """The packaged templates, each replaced by the file of the same name in `directory`, if any.

        Raise ValueError, naming the file, when one cannot be read or does not render.
        """
        parsed = {
            name: MailTemplate.parse(_read(f"{name}.txt", directory), _read(f"{name}.html", directory), name)
            for name in _NAMES
        }
        return cls(reset=parsed[RESET], verify=parsed[VERIFY])


def _read(file_name: str, directory: Path | None) -> str:
    if directory is not None and (directory / file_name).exists():
        try:
            return (directory / file_name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"mail template {directory / file_name} cannot be read: {exc}") from exc
    return resources.files("authsvc.mail").joinpath("templates", file_name).read_text(encoding="utf-8")


@cache
def packaged_templates() -> MailTemplates:
    return MailTemplates.load()


def _compose(
    template: MailTemplate, recipient: str, link: str, lifetime: timedelta, now: datetime
) -> OutgoingMail:
    subject, text, html_body = template.render(_values(recipient, link, lifetime))
    return OutgoingMail(
        recipient=recipient, subject=subject, text_body=text, html_body=html_body, created_at=now
    )


def compose_reset(
    recipient: str, link: str, lifetime: timedelta, now: datetime, templates: MailTemplates | None = None
) -> OutgoingMail:
    """The password-reset mail to `recipient`, with `link` that works for `lifetime`, queued at `now`."""
    return _compose((templates or packaged_templates()).reset, recipient, link, lifetime, now)


def compose_verify(
    recipient: str, link: str, lifetime: timedelta, now: datetime, templates: MailTemplates | None = None
) -> OutgoingMail:
    """The email-verification mail to `recipient`, with `link` that works for `lifetime`, queued at `now`."""
    return _compose((templates or packaged_templates()).verify, recipient, link, lifetime, now)


class MailComposer:
    """The account mails for one deployment: links on `public_url` (AUTHSVC_PUBLIC_URL), its templates."""

    def __init__(self, public_url: str, templates: MailTemplates | None = None) -> None:
        self._public_url = public_url
        self._templates = templates or packaged_templates()

    def reset(self, recipient: str, token: str, lifetime: timedelta, now: datetime) -> OutgoingMail:
        link = reset_link(self._public_url, token)
        return compose_reset(recipient, link, lifetime, now, self._templates)

    def verify(self, recipient: str, token: str, lifetime: timedelta, now: datetime) -> OutgoingMail:
        link = verify_link(self._public_url, token)
        return compose_verify(recipient, link, lifetime, now, self._templates)
