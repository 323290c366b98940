"""The store package's public names are pinned, so a removal is a deliberate change."""

import authsvc.store


def test_the_store_exports_exactly_its_interface():
    assert sorted(authsvc.store.__all__) == [
        "AlreadyExists",
        "Conflict",
        "NewSession",
        "NotFound",
        "RotatedSession",
        "Rotation",
        "Session",
        "SessionStore",
        "Store",
        "StoreError",
        "StoreUnavailable",
        "User",
        "UserStore",
    ]
    for name in authsvc.store.__all__:
        assert getattr(authsvc.store, name) is not None
