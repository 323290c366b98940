"""The current time, passed in so that tests control expiry without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
"""Returns the current time as a timezone-aware UTC datetime."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def system_clock() -> datetime:
    return datetime.now(UTC)


def to_epoch_seconds(moment: datetime) -> int:
    """Whole seconds since the epoch, rounded down (JWT NumericDate, RFC 7519 section 2)."""
    return (moment - EPOCH) // timedelta(seconds=1)
