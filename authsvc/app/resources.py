"""What the server runs on, opened from the settings: the schema, the store, the attempt counters, the
signing keys (files in the keys directory), the gateway secret and the mail courier.

Each raises with what to fix: StartupError, KeyStoreError (keys) or StoreError (database).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from authsvc import gateway_secret
from authsvc.app.errors import StartupError
from authsvc.clock import Clock
from authsvc.domain.courier import Courier
from authsvc.domain.keys import KeyRing, LiveKeyRing
from authsvc.mail.delivery import open_delivery
from authsvc.settings import Settings
from authsvc.store.key_files import KeyDirectory, load_or_create_keys, load_refresh_secret
from authsvc.store.migrate import is_migrated, migrate
from authsvc.store.outbox_sql import SqlOutbox
from authsvc.store.sql import SqlStore, open_store
from authsvc.store.throttle import AttemptStore, SqlAttemptStore
from authsvc.store.throttle_redis import RedisAttemptStore


@dataclass(frozen=True)
class SigningKeys:
    """What tokens are signed and MACed with: the live key ring and the refresh-token secret."""

    ring: LiveKeyRing
    refresh_secret: bytes


async def prepare_schema(settings: Settings) -> None:
    """Migrate the database, or with `--no-migrate` refuse to start on a schema that is not the newest."""
    if settings.migrate_on_start:
        await migrate(settings.database_url, connect_timeout_seconds=settings.db_timeout_seconds)
    elif not await is_migrated(settings.database_url, connect_timeout_seconds=settings.db_timeout_seconds):
        raise StartupError("the database schema is not at the newest revision: run `authsvc migrate`")


def load_signing_keys(settings: Settings, now: datetime) -> SigningKeys:
    """The keys directory's keys (the first one created when there is none) and refresh-token secret."""
    directory = settings.signing_keys_dir
    delay = timedelta(seconds=settings.key_activation_delay_seconds)
    ring = KeyRing.from_files(load_or_create_keys(directory, now), delay)
    return SigningKeys(LiveKeyRing(KeyDirectory(directory), ring), load_refresh_secret(directory))


def load_gateway_secret(settings: Settings) -> str:
    """The secret the REST gateway proves itself with (the file is created when missing, so that
    `make run` needs no step)."""
    try:
        return gateway_secret.load_or_create(settings.gateway_secret_path)
    except gateway_secret.GatewaySecretError as exc:
        raise StartupError(f"AUTHSVC_GATEWAY_SECRET_FILE: {exc}") from exc


async def open_sql_store(settings: Settings) -> SqlStore:
    return await open_store(
        settings.database_url, pool_size=settings.db_pool_size, timeout_seconds=settings.db_timeout_seconds
    )


def open_attempt_store(settings: Settings, store: SqlStore) -> AttemptStore:
    """Login and register attempt counters: in Redis when AUTHSVC_REDIS_URL is set, else in the service's
    database."""
    if settings.redis_url:
        return RedisAttemptStore.from_url(
            settings.redis_url, settings.redis_key_prefix, settings.db_timeout_seconds
        )
    return SqlAttemptStore(store.runner)


def open_courier(
    settings: Settings, store: SqlStore, clock: Clock, on_event: Callable[[str, int], None]
) -> Courier:
    """The courier of this server (not started): it sends the outbox in the store's database through SMTP
    (AUTHSVC_SMTP_URL), or without it writes .eml files in the data dir's `mail` folder; the log says
    which, and where."""
    mail = settings.mail
    delivery = open_delivery(mail, settings.data_dir)
    return Courier(
        SqlOutbox(store.runner), delivery, clock, retry_seconds=mail.retry_seconds, on_event=on_event
    )
