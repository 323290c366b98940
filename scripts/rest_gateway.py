"""Start the REST sidecar: `python scripts/rest_gateway.py`, an alias of the `authsvc-gateway` command
(authsvc/gateway_cli.py; settings from AUTHSVC_* variables). Stops cleanly on SIGINT or SIGTERM."""

from __future__ import annotations

import sys

from authsvc.gateway_cli import main

if __name__ == "__main__":
    sys.exit(main())
