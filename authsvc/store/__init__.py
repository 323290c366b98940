"""Persistence: the store interface and its SQL implementation (SQLite or PostgreSQL)."""

from authsvc.store.interface import (
    ACCOUNT_DISABLED_REASON,
    AlreadyExists,
    Conflict,
    DisabledChange,
    NewSession,
    NotFound,
    RotatedSession,
    Rotation,
    Session,
    SessionStore,
    Store,
    StoreError,
    StoreUnavailable,
    User,
    UserDisabled,
    UserStore,
)

__all__ = [
    "ACCOUNT_DISABLED_REASON",
    "AlreadyExists",
    "Conflict",
    "DisabledChange",
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
    "UserDisabled",
    "UserStore",
]
