"""Logging as JSON lines on stdout: one object per event, with any `extra` fields the caller gave.

A last line of defence redacts what must never reach a log, whatever a caller passed: email addresses
are masked (`a***@example.com`) and anything shaped like a JWT is replaced, at every level.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
REDACTED_TOKEN = "[redacted token]"  # noqa: S105 (a placeholder, not a secret)


def mask_email(email: str) -> str:
    """`ada@example.com` -> `a***@example.com`: enough to tell accounts apart in a log, not to name one."""
    local, at, domain = email.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def redact(text: str) -> str:
    """Mask every email address in `text` and replace anything shaped like a JWT."""
    # Most lines (every access line) hold neither: skip the regular expressions, which cost more.
    if "@" in text:
        text = _EMAIL.sub(r"\1***@\2", text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED_TOKEN, text)
    return text


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
        return redact(json.dumps(entry, default=str))


def configure_logging(level: str = "INFO") -> None:
    # Every RPC writes a line: skip what our JSON never shows (the logging HOWTO's "Optimization"):
    # the caller's frame, thread, process and multiprocessing names.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
