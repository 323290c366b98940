"""Retention: deleting sessions that ended long ago (`authsvc prune --older-than 30d`).

A session row outlives its end on purpose (revoked rows are the audit trail of who ended what); this is
how operators bound that history.
"""

from __future__ import annotations

from datetime import datetime

from authsvc.store import SessionStore

DEFAULT_BATCH_SIZE = 500


async def delete_sessions_ended_before(
    store: SessionStore, cutoff: datetime, batch_size: int = DEFAULT_BATCH_SIZE
) -> int:
    """Delete every session that expired or was revoked before `cutoff`; return how many.

    Each batch of at most `batch_size` rows is its own short transaction, so live traffic never waits
    long on the locks. An interrupted run leaves whole batches deleted and can simply be run again.
    """
    if batch_size <= 0:
        raise ValueError("batch_size must be positive")
    total = 0
    while True:
        deleted = await store.delete_sessions_before(cutoff, batch_size)
        total += deleted
        if deleted < batch_size:
            return total
