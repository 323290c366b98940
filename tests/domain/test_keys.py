"""Signing keys: RFC 7638 thumbprints, first-start generation, and reuse across restarts."""

from __future__ import annotations

import base64
import stat
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from authsvc.domain.keys import KeyStoreError, add_key, load_or_create_keys, thumbprint

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def test_the_kid_is_the_rfc_8037_example_thumbprint():
    # RFC 8037, appendix A.2 and A.3.
    x = base64.urlsafe_b64decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    assert thumbprint(Ed25519PublicKey.from_public_bytes(x)) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_a_key_is_created_at_first_start_and_reused_after(tmp_path):
    first = load_or_create_keys(tmp_path / "keys", NOW)
    again = load_or_create_keys(tmp_path / "keys", NOW)
    assert first.signing.kid == again.signing.kid
    (path,) = (tmp_path / "keys").glob("*.pem")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_added_key_signs_and_the_old_one_still_verifies(tmp_path):
    old = load_or_create_keys(tmp_path, NOW).signing
    new = add_key(tmp_path, datetime(2026, 11, 28, tzinfo=UTC))
    ring = load_or_create_keys(tmp_path, NOW)
    assert ring.signing.kid == new.kid
    assert ring.public_key(old.kid) is not None


def test_a_file_that_is_not_a_key_stops_the_start_with_a_clear_error(tmp_path):
    (tmp_path / "20260101T000000000000Z-bogus.pem").write_text("not a key")
    with pytest.raises(KeyStoreError, match="cannot read signing key"):
        load_or_create_keys(tmp_path, NOW)
