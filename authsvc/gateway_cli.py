"""The `authsvc-gateway` command: the REST sidecar, configured by AUTHSVC_* variables only.

It lives beside `authsvc.gateway`, not in it: the gateway package never imports `authsvc.logs`
(docs/architecture.md, "Import layers"), while the command shares the server's JSON log lines.
A setting the gateway cannot use, and a listen address it cannot bind, stop it at start with one line on
stderr and exit status 2; SIGINT or SIGTERM stop it cleanly (status 0).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from authsvc.gateway import GatewaySettings, serve
from authsvc.gateway.settings import SettingsError
from authsvc.logs import configure_logging

PROG = "authsvc-gateway"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")  # as the server accepts them


def log_level(environ: Mapping[str, str]) -> str:
    """AUTHSVC_LOG_LEVEL, upper-cased (INFO when unset or empty); SettingsError when not a level."""
    value = (environ.get("AUTHSVC_LOG_LEVEL") or "").strip().upper() or "INFO"
    if value not in LOG_LEVELS:
        raise SettingsError(f"AUTHSVC_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args in (["-h"], ["--help"]):
        print(f"usage: {PROG}\n\n{__doc__}")
        return 0
    if args:
        print(f"{PROG}: takes no arguments (settings come from AUTHSVC_* variables)", file=sys.stderr)
        return 2
    try:
        configure_logging(log_level(os.environ))
        settings = GatewaySettings.from_env(os.environ)
        logging.getLogger("authsvc.gateway").info("settings: %s", settings.describe())
        asyncio.run(serve(settings))
    except SettingsError as exc:  # also a TLS file that cannot be read, or a port that cannot be bound
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers are in place: nothing to clean up
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
