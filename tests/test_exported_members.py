"""The store package's public names are pinned, so a removal is a deliberate change."""

import authsvc.store


def test_the_store_exports_exactly_its_interface():
    assert sorted(authsvc.store.__all__) == [
        "ACCOUNT_DISABLED_REASON",
        "AlreadyExists",
        "Conflict",
        "DisabledChange",
        "NewSession",
        "NotFound",
        "RotatedSession",
        "Rotation",
        "Session",
        "SessionStanding",
        "SessionStore",
        "Store",
        "StoreError",
        "StoreUnavailable",
        "User",
        "UserDisabled",
        "UserStore",
    ]
    for name in authsvc.store.__all__:
        assert getattr(authsvc.store, name) is not None
