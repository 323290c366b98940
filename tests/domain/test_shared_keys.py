"""Signing keys shared by replicas: one directory, written once, then only read."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from authsvc.domain.keys import add_key, load_or_create_keys

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _listing(folder: Path) -> list[tuple[str, int]]:
    return sorted((path.name, path.stat().st_mtime_ns) for path in folder.iterdir())


def test_existing_keys_load_without_writing_to_the_directory(tmp_path):
    """A read-only secret mount holds only the key files; loading must not create anything there."""
    made = add_key(tmp_path / "generated", NOW)
    mount = tmp_path / "mount"
    mount.mkdir()
    for pem in (tmp_path / "generated").glob("*.pem"):
        shutil.copy(pem, mount / pem.name)
    before = _listing(mount)
    ring = load_or_create_keys(mount, NOW)
    assert ring.signing.kid == made.kid
    assert _listing(mount) == before


def test_replicas_loading_one_directory_sign_with_the_same_key(tmp_path):
    first = load_or_create_keys(tmp_path / "keys", NOW)
    second = load_or_create_keys(tmp_path / "keys", NOW)
    assert first.signing.kid == second.signing.kid
    assert len(list((tmp_path / "keys").glob("*.pem"))) == 1
