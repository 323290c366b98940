"""Signing keys shared by replicas: one directory, written once, then only read."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from authsvc.domain.keys import KeyRing
from authsvc.store.key_files import load_or_create_keys

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((path.name, path.stat().st_mtime_ns) for path in folder.iterdir())


def test_existing_keys_load_without_writing_to_the_directory(tmp_path):
    """A read-only secret mount holds only the key files and the refresh-token secret; loading must not
    create anything there."""
    made = KeyRing.from_files(load_or_create_keys(tmp_path / "generated", NOW)).signing_at(NOW)
    mount = tmp_path / "mount"
    mount.mkdir()
    for path in (tmp_path / "generated").iterdir():
        if path.name != ".lock":
            shutil.copy(path, mount / path.name)
    before = _listing(mount)
    ring = KeyRing.from_files(load_or_create_keys(mount, NOW))
    assert ring.signing_at(NOW).kid == made.kid
    assert _listing(mount) == before


def test_replicas_loading_one_directory_sign_with_the_same_key(tmp_path):
    first = KeyRing.from_files(load_or_create_keys(tmp_path / "keys", NOW))
    second = KeyRing.from_files(load_or_create_keys(tmp_path / "keys", NOW))
    assert first.signing_at(NOW).kid == second.signing_at(NOW).kid
    assert len(list((tmp_path / "keys").glob("*.pem"))) == 1
