"""The mail a test server sends, read back: without AUTHSVC_SMTP_URL the server writes each mail as a .eml
file under `<data dir>/mail` (authsvc/mail/files.py), and the tests follow the links in them as a person
would follow the link in their inbox."""

from __future__ import annotations

import asyncio
import email
import re
import time
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from authsvc.mail.delivery import MAIL_FOLDER

# The courier sends after the commit, in the background: a mail is waited for, never assumed.
WAIT_SECONDS = 15.0
_LINK = re.compile(r"https?://\S+/account/(reset|verify)\?token=[^\s\"<>]+")


def token_of(link: str) -> str:
    """The `token` query parameter of a link from a mail."""
    return parse_qs(urlsplit(link).query)["token"][0]


def path_of(link: str) -> str:
    """The path and query of a link, to open it on a test gateway whatever AUTHSVC_PUBLIC_URL said."""
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


class Mailbox:
    """The .eml files under one data dir; each mail is handed out once, oldest first."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / MAIL_FOLDER
        self._taken: set[str] = set()

    def messages(self) -> list[EmailMessage]:
        """Every mail written so far, oldest first."""
        paths = sorted(self.folder.glob("*.eml"), key=lambda path: path.stat().st_mtime_ns)
        return [_parse(path) for path in paths]

    async def next_link(self, kind: str, recipient: str) -> str:
        """The link of the next mail of `kind` ("reset" or "verify") to `recipient` not handed out yet,
        waiting for the courier to write it."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            found = self._first_new(kind, recipient)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                seen = [(str(m["To"]), str(m["Subject"])) for m in self.messages()]
                raise AssertionError(f"no {kind} mail to {recipient} in {WAIT_SECONDS} s; mail seen: {seen}")
            await asyncio.sleep(0.05)

    async def next_token(self, kind: str, recipient: str) -> str:
        return token_of(await self.next_link(kind, recipient))

    def _first_new(self, kind: str, recipient: str) -> str | None:
        if not self.folder.is_dir():
            return None
        for path in sorted(self.folder.glob("*.eml"), key=lambda path: path.stat().st_mtime_ns):
            if path.name in self._taken:
                continue
            message = _parse(path)
            link = link_in(message)
            if str(message["To"]) == recipient and link is not None and f"/account/{kind}?" in link:
                self._taken.add(path.name)
                return link
        return None


def link_in(message: EmailMessage) -> str | None:
    """The account link in the plain-text part of a mail."""
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        return None
    found = _LINK.search(part.get_content())
    return found[0] if found else None


def _parse(path: Path) -> EmailMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed
