"""`authsvc check`: whether `authsvc serve` could start with these settings, without starting it.

For process supervisors and deploy scripts: each check raises StartupError with a one-line reason that
names what to fix. It writes nothing: no database file, no key, no schema change.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from authsvc.app.errors import StartupError
from authsvc.app.services import account_mails
from authsvc.settings import Settings
from authsvc.store import StoreError
from authsvc.store.key_files import KeyStoreError, check_keys
from authsvc.store.migrate import is_migrated
from authsvc.transport.tls import TlsError, TlsFiles, read_material


async def preflight(settings: Settings) -> str:
    """Check the TLS files, the mail templates, the signing keys and the database; return a one-line verdict
    starting "ok".

    Raise StartupError with the reason when `authsvc serve` would fail.
    """
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        try:
            read_material(
                TlsFiles(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)
            )
        except TlsError as exc:
            raise StartupError(str(exc)) from exc
    try:
        account_mails(settings)  # the templates of AUTHSVC_MAIL_TEMPLATES_DIR must render
    except ValueError as exc:
        raise StartupError(str(exc)) from exc
    _check_keys(settings.signing_keys_dir)
    if _missing_sqlite_file(settings.database_url):
        migrated = False
    else:
        try:
            migrated = await is_migrated(settings.database_url)
        except StoreError as exc:
            raise StartupError(f"database unreachable: {exc}") from exc
    if not migrated:
        if not settings.migrate_on_start:
            raise StartupError("the database schema is not at the newest revision: run `authsvc migrate`")
        return "ok (the schema is not at the newest revision: `authsvc serve` migrates it first)"
    return "ok"


def _check_keys(directory: Path) -> None:
    """Keys that exist must be readable; none at all is fine, since the server creates the first one."""
    if not directory.exists():
        return
    try:
        check_keys(directory)
    except KeyStoreError as exc:
        raise StartupError(str(exc)) from exc


def _missing_sqlite_file(database_url: str) -> bool:
    url = make_url(database_url)
    return url.get_backend_name() == "sqlite" and bool(url.database) and not Path(str(url.database)).exists()
