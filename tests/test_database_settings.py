"""The database settings a deployment sets: read from the environment, checked at start-up."""

from __future__ import annotations

import pytest

from authsvc.settings import Settings, SettingsError

PG_URL = "postgresql+asyncpg://authsvc:secret@db.internal:5432/authsvc"


def test_the_postgresql_url_pool_size_and_timeout_come_from_the_environment():
    settings = Settings.from_env(
        {"AUTHSVC_DATABASE_URL": PG_URL, "AUTHSVC_DB_POOL_SIZE": "4", "AUTHSVC_DB_TIMEOUT_SECONDS": "2.5"}
    )
    assert (settings.database_url, settings.db_pool_size, settings.db_timeout_seconds) == (PG_URL, 4, 2.5)


def test_the_database_password_is_masked_in_the_start_up_log():
    described = Settings.from_env({"AUTHSVC_DATABASE_URL": PG_URL}).describe()
    assert described["database_url"] == "postgresql+asyncpg://authsvc:***@db.internal:5432/authsvc"


@pytest.mark.parametrize(
    "variables",
    [
        {"AUTHSVC_DB_POOL_SIZE": "0"},
        {"AUTHSVC_DB_POOL_SIZE": "many"},
        {"AUTHSVC_DB_TIMEOUT_SECONDS": "0"},
        {"AUTHSVC_DB_TIMEOUT_SECONDS": "-1"},
    ],
)
def test_a_pool_size_or_timeout_that_cannot_work_is_refused(variables):
    with pytest.raises(SettingsError):
        Settings.from_env(variables)
