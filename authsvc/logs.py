"""Logging as JSON lines (on stdout by default): one object per event, with any `extra` fields the
caller gave.

A last line of defence redacts what must never reach a log, whatever a caller passed: email addresses
are masked (`a***@example.com`) and anything shaped like a JWT is replaced, at every level.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_EMAIL = re.compile(
    # A URL's user name without a password (`postgresql+asyncpg://authsvc@db.internal/authsvc`, as the
    # start-up configuration shows it) is no email address: matched first, it is kept as it is. With a
    # password (`user:pass@host`) the email pattern still masks what precedes the `@`.
    r"(?P<url_user>[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9._%+-]+@)"
    r"|(?P<first>[A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
REDACTED_TOKEN = "[redacted token]"  # noqa: S105 (a placeholder, not a secret)


def mask_email(email: str) -> str:
    """`ada@example.com` -> `a***@example.com`: enough to tell accounts apart in a log, not to name one."""
    local, at, domain = email.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def _mask_match(matched: re.Match[str]) -> str:
    if matched["url_user"] is not None:
        return matched["url_user"]
    return f"{matched['first']}***@{matched['domain']}"


def redact(text: str) -> str:
    """Mask every email address in `text` and replace anything shaped like a JWT."""
    # Most lines (every access line) hold neither: skip the regular expressions, which cost more.
    if "@" in text:
        text = _EMAIL.sub(_mask_match, text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED_TOKEN, text)
    return text


# One encoder for every line: json.dumps(default=...) would build a new one each time.
_ENCODER = json.JSONEncoder(default=str)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({key: value for key, value in record.__dict__.items() if key not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(_ENCODER.encode(entry))


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record, as a JSON line, to `stream` (default: stdout)."""
    # Every RPC writes a line: skip what our JSON never shows (the logging HOWTO's "Optimization"):
    # the caller's frame, thread, process and multiprocessing names.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
