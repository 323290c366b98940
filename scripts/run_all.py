"""`make run`: the gRPC server and the REST gateway together, in the foreground; Ctrl-C stops both.

The server runs `authsvc serve` (which migrates the store first); the gateway runs once the server
listens. When either process exits, the other is stopped too.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> int:
    processes = [subprocess.Popen([str(BIN / "authsvc"), "serve"], cwd=ROOT)]
    gateway = ROOT / "scripts" / "rest_gateway.py"
    if gateway.exists():
        processes.append(subprocess.Popen([sys.executable, str(gateway)], cwd=ROOT))
    stopping = False

    def _on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        while not stopping and all(process.poll() is None for process in processes):
            time.sleep(0.2)
    finally:
        _stop(processes)
    failed = [process.returncode for process in processes if process.returncode not in (0, -signal.SIGTERM)]
    return 0 if stopping or not failed else 1


if __name__ == "__main__":
    sys.exit(main())
