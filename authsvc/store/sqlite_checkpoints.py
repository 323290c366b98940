"""WAL checkpoints of a SQLite database off the event loop: a thread of their own, on a connection of its own.

By default SQLite checkpoints inside the COMMIT that takes the write-ahead log past 1,000 pages: that
commit copies the log into the database file and syncs it, on the event loop's thread. LogoutAll of
10,000 sessions writes about that many pages, so it paid for its own checkpoint every time, and any
other call paid for one every few hundred commits. Here the serving connection only checkpoints as a
backstop, when the log is far larger (`BACKSTOP_PAGES`), and this thread runs a PASSIVE checkpoint every
`interval_seconds`: it copies what no reader still needs, never waits for a writer, and sqlite3 releases
the GIL while it works, so the loop keeps serving.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

_log = logging.getLogger(__name__)

# The serving connection's own autocheckpoint, in pages (4 KiB): only reached when this thread is not
# keeping up (or has died), so the log cannot grow without bound.
BACKSTOP_PAGES = 16384


class BackgroundCheckpointer:
    """Checkpoints the WAL database at `path` every `interval_seconds` until stopped."""

    def __init__(self, path: str, interval_seconds: float = 1.0) -> None:
        self._path = path
        self._interval = interval_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the checkpoint in progress, if any (a PASSIVE one never waits on locks)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            _log.warning("sqlite checkpoints: cannot open the database: %s", exc)
            return
        try:
            while not self._stopping.wait(self._interval):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy or unreachable now; the next round tries again
                    _log.debug("sqlite checkpoint skipped: %s", exc)
        finally:
            connection.close()
