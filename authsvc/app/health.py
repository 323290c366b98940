"""Keeping a running server in step with what it runs on: the health status follows the store, the
throttling counters and the signing keys; the key ring follows the keys directory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from authsvc.domain.keys import LiveKeyRing
from authsvc.store import Store, StoreError
from authsvc.store.key_files import KeyStoreError, check_keys
from authsvc.store.throttle import AttemptStore
from authsvc.transport.metrics import ServerMetrics

log = logging.getLogger(__name__)

HEALTH_INTERVAL_SECONDS = 2.0

Publish = Callable[[bool], Awaitable[None]]  # sets the gRPC health status: serving or not


async def check_health(
    store: Store,
    attempts: AttemptStore,
    *,
    keys_dir: Path,
    metrics: ServerMetrics,
    publish: Publish,
    serving: bool | None,
) -> bool:
    """Ping the store and the throttling counters (Redis, when they live there: logins fail without them),
    and read the signing keys once; publish the health status when it changed.

    Return whether all are usable.
    """
    healthy = True
    try:
        await store.ping()
        await attempts.ping()
    except StoreError:
        healthy = False
        metrics.database_errors.labels("health_check").inc()
    try:
        if await asyncio.to_thread(check_keys, keys_dir) == 0:
            raise KeyStoreError(f"keys directory {keys_dir} holds no signing key")
    except KeyStoreError as exc:
        if serving is not False:
            log.warning("signing keys unreadable: %s", exc)
        healthy = False
    if healthy != serving:
        await publish(healthy)
        log.log(
            logging.INFO if healthy else logging.WARNING,
            "%s",
            "store and keys usable"
            if healthy
            else "store, throttling counters or keys unusable: NOT_SERVING",
        )
    return healthy


async def watch_health(
    store: Store,
    attempts: AttemptStore,
    *,
    keys_dir: Path,
    metrics: ServerMetrics,
    publish: Publish,
    serving: bool,
) -> None:
    """Keep the health status in step with the store, the throttling counters and the signing keys."""
    while True:
        await asyncio.sleep(HEALTH_INTERVAL_SECONDS)
        serving = await check_health(
            store, attempts, keys_dir=keys_dir, metrics=metrics, publish=publish, serving=serving
        )


async def reload_key_ring(keys: LiveKeyRing) -> None:
    """Re-read the keys directory off the event loop; log what changed. Raise KeyStoreError, keeping the
    keys in use, when it cannot be read."""
    added, removed = await asyncio.to_thread(keys.reload)
    if added or removed:
        log.info("signing keys reloaded", extra={"added": sorted(added), "removed": sorted(removed)})


async def reload_keys_forever(keys: LiveKeyRing, interval: float) -> None:
    """Follow the keys directory: added keys are published, pruned and revoked ones dropped."""
    while True:
        await asyncio.sleep(interval)
        try:
            await reload_key_ring(keys)
        except KeyStoreError as exc:
            log.warning("signing keys not reloaded, keeping the previous set: %s", exc)
