"""The one error of starting: what `authsvc serve` and `authsvc check` print before exiting."""

from __future__ import annotations


class StartupError(RuntimeError):
    """The server cannot start: the schema is not migrated, a listen address cannot be bound, or the TLS
    files or the gateway secret cannot be used."""
