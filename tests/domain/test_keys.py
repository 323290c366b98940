"""Signing keys: RFC 7638 thumbprints, first-start generation, and reuse across restarts."""

from __future__ import annotations

import base64
import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from authsvc.domain.keys import KeyRing, LiveKeyRing, prunable_before, signing_kid
from authsvc.store.key_files import (
    KeyDirectory,
    KeyStoreError,
    add_key,
    load_or_create_keys,
    load_refresh_secret,
    prune_keys,
    read_keys,
    revoke_key,
    thumbprint,
)

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def test_the_kid_is_the_rfc_8037_example_thumbprint():
    # RFC 8037, appendix A.2 and A.3.
    x = base64.urlsafe_b64decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    assert thumbprint(Ed25519PublicKey.from_public_bytes(x)) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_a_key_is_created_at_first_start_and_reused_after(tmp_path):
    first = KeyRing.from_files(load_or_create_keys(tmp_path / "keys", NOW))
    again = KeyRing.from_files(load_or_create_keys(tmp_path / "keys", NOW))
    assert first.signing_at(NOW).kid == again.signing_at(NOW).kid
    (path,) = (tmp_path / "keys").glob("*.pem")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_added_key_signs_and_the_old_one_still_verifies(tmp_path):
    old = KeyRing.from_files(load_or_create_keys(tmp_path, NOW)).signing_at(NOW)
    new = add_key(tmp_path, NOW + timedelta(days=1))
    ring = KeyRing.from_files(load_or_create_keys(tmp_path, NOW))
    assert ring.signing_at(NOW + timedelta(days=1)).kid == new.kid
    assert ring.public_key(old.kid) is not None


def test_an_added_key_signs_only_after_the_activation_delay(tmp_path):
    delay = timedelta(minutes=10)
    old = KeyRing.from_files(load_or_create_keys(tmp_path, NOW), delay).signing_at(NOW)
    new = add_key(tmp_path, NOW + timedelta(hours=1))
    ring = KeyRing.from_files(read_keys(tmp_path), delay)
    assert [key.kid for key in ring.published()] == [new.kid, old.kid]  # published at once
    assert ring.signing_at(NOW + timedelta(hours=1) + delay - timedelta(seconds=1)).kid == old.kid
    assert ring.signing_at(NOW + timedelta(hours=1) + delay).kid == new.kid


def test_the_first_key_signs_at_once_whatever_the_delay(tmp_path):
    ring = KeyRing.from_files(load_or_create_keys(tmp_path, NOW), timedelta(days=1))
    assert ring.signing_at(NOW) == ring.keys[0]


def test_a_live_ring_follows_added_and_revoked_keys(tmp_path):
    delay = timedelta(minutes=10)
    live = LiveKeyRing(KeyDirectory(tmp_path), KeyRing.from_files(load_or_create_keys(tmp_path, NOW), delay))
    (first,) = live.ring.keys
    second = add_key(tmp_path, NOW + timedelta(hours=1))
    assert live.reload() == (frozenset({second.kid}), frozenset())
    moment = NOW + timedelta(hours=1, minutes=5)  # `second` is published, not yet signing
    removed, replacement = revoke_key(
        tmp_path, first.kid, moment, lambda keys: signing_kid(keys, moment, delay)
    )
    assert removed.kid == first.kid and replacement is not None  # `first` was signing
    added, dropped = live.reload()
    assert (added, dropped) == (frozenset({replacement.kid}), frozenset({first.kid}))
    assert live.ring.public_key(first.kid) is None and first.kid in live.ring.revoked
    # No key has been published long enough: the oldest left signs at once.
    assert live.ring.signing_at(moment).kid == second.kid


def test_revoking_a_key_that_does_not_sign_adds_none(tmp_path):
    delay = timedelta(minutes=10)
    first = KeyRing.from_files(load_or_create_keys(tmp_path, NOW), delay).signing_at(NOW)
    second = add_key(tmp_path, NOW + timedelta(hours=1))
    moment = NOW + timedelta(hours=1)
    removed, replacement = revoke_key(
        tmp_path, second.kid, moment, lambda keys: signing_kid(keys, moment, delay)
    )
    assert (removed.kid, replacement) == (second.kid, None)
    assert [key.kid for key in read_keys(tmp_path).keys] == [first.kid]


def test_revoking_an_unknown_kid_changes_nothing(tmp_path):
    load_or_create_keys(tmp_path, NOW)
    before = sorted(path.name for path in tmp_path.iterdir())
    with pytest.raises(KeyStoreError, match="no signing key"):
        revoke_key(tmp_path, "no-such-kid", NOW, lambda keys: signing_kid(keys, NOW, timedelta(0)))
    assert sorted(path.name for path in tmp_path.iterdir()) == before


def test_prune_counts_from_when_the_successor_started_signing(tmp_path):
    delay, lifetime = timedelta(minutes=10), timedelta(hours=1)
    old = KeyRing.from_files(load_or_create_keys(tmp_path, NOW), delay).signing_at(NOW)
    add_key(tmp_path, NOW)
    assert prune_keys(tmp_path, prunable_before(NOW + delay + lifetime, lifetime, delay)) == []
    later = NOW + delay + lifetime + timedelta(seconds=1)
    assert [key.kid for key in prune_keys(tmp_path, prunable_before(later, lifetime, delay))] == [old.kid]


def test_the_refresh_token_secret_is_created_once_private_and_32_bytes(tmp_path):
    load_or_create_keys(tmp_path, NOW)
    secret = load_refresh_secret(tmp_path)
    load_or_create_keys(tmp_path, NOW)
    assert load_refresh_secret(tmp_path) == secret and len(secret) == 32
    assert stat.S_IMODE((tmp_path / "refresh-token.secret").stat().st_mode) == 0o600


def test_a_file_that_is_not_a_key_stops_the_start_with_a_clear_error(tmp_path):
    (tmp_path / "20260101T000000000000Z-bogus.pem").write_text("not a key")
    with pytest.raises(KeyStoreError, match="cannot read signing key"):
        load_or_create_keys(tmp_path, NOW)
