"""SQLite's WAL checkpoints run on a thread of their own (sqlite_checkpoints.py), not in the commits of the
event loop's thread."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
import time
from pathlib import Path

from authsvc.store.sql import open_store
from authsvc.store.sqlite_checkpoints import BACKSTOP_PAGES, BackgroundCheckpointer

DEADLINE = 30.0  # seconds: generous, for a loaded machine


def _checkpoint_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "sqlite-checkpoints"]


async def test_the_checkpointer_copies_the_log_into_the_database_file(tmp_path: Path):
    path = tmp_path / "wal.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # only the checkpointer may checkpoint
    writer.execute("CREATE TABLE t (x BLOB)")
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = path.stat().st_size
    writer.executemany("INSERT INTO t VALUES (?)", [(bytes(1000),) for _ in range(500)])
    assert path.stat().st_size == before  # all of it is still in the log
    checkpoints = BackgroundCheckpointer(str(path), interval_seconds=0.05)
    checkpoints.start()
    try:
        deadline = time.monotonic() + DEADLINE
        while path.stat().st_size == before and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert path.stat().st_size > before
    finally:
        checkpoints.stop()
        writer.close()
    assert not _checkpoint_threads()


async def test_a_sqlite_store_checkpoints_off_the_loop_while_open(tmp_path: Path, sqlite_template: Path):
    path = tmp_path / "authsvc.db"
    shutil.copy(sqlite_template, path)
    store = await open_store(f"sqlite+aiosqlite:///{path}")
    try:
        assert len(_checkpoint_threads()) == 1
        # The serving connection checkpoints only as a backstop.
        driver = store.runner.driver  # type: ignore[attr-defined]
        assert driver.execute("PRAGMA wal_autocheckpoint").fetchone() == (BACKSTOP_PAGES,)
    finally:
        await store.close()
    assert not _checkpoint_threads()
