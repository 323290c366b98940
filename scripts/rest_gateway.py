"""Start the REST sidecar: `python scripts/rest_gateway.py` (settings from AUTHSVC_* variables).

Stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from authsvc.gateway import GatewaySettings, serve
from authsvc.gateway.settings import SettingsError
from authsvc.logs import configure_logging


def main() -> int:
    configure_logging(os.environ.get("AUTHSVC_LOG_LEVEL", "INFO"))
    try:
        settings = GatewaySettings.from_env(os.environ)
        logging.getLogger("authsvc.gateway").info("settings: %s", settings.describe())
        asyncio.run(serve(settings))
    except SettingsError as exc:  # also a TLS file that cannot be read at start-up
        print(f"rest_gateway: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
