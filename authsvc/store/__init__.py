"""Persistence: the store interface and its SQL implementation (SQLite or PostgreSQL)."""

from authsvc.store.interface import (
    AlreadyExists,
    Conflict,
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
    UserStore,
)

__all__ = [
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
