"""A free loopback port for a server a test starts itself."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port the kernel just gave out; bound and released, so a small race with other processes remains."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
