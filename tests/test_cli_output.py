"""What the `authsvc` command writes where: results alone on stdout, logs on stderr, one line per failure."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from authsvc.logs import JsonFormatter
from authsvc.settings import Settings
from authsvc.store.key_files import add_key, read_keys
from tests.ports import free_port
from tests.server_process import wait_serving

pytestmark = pytest.mark.slow

AUTHSVC = str(Path(sys.executable).parent / "authsvc")


def _authsvc(data_dir: Path, *argv: str, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSVC_")}
    env |= {"AUTHSVC_DATA_DIR": str(data_dir), **variables}
    return subprocess.run([AUTHSVC, *argv], env=env, capture_output=True, text=True, timeout=60, check=False)


def _stdout_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_admin_commands_print_only_their_result_on_stdout_and_log_on_stderr(tmp_path):
    migrated = _authsvc(tmp_path, "migrate")
    assert _stdout_lines(migrated) == ["schema is at the newest revision"]
    logged = [json.loads(line) for line in migrated.stderr.splitlines()]
    assert logged[0]["message"] == "configuration"
    assert any(entry["logger"].startswith("alembic") for entry in logged)

    [rotated] = _stdout_lines(_authsvc(tmp_path, "keys", "rotate"))
    matched = re.fullmatch(r"added signing key (\S+); running servers publish it within .*", rotated)
    assert matched is not None, rotated

    revoked = _stdout_lines(_authsvc(tmp_path, "keys", "revoke", matched.group(1)))
    assert revoked[0].startswith(f"revoked signing key {matched.group(1)};")
    assert all(line.startswith("added signing key ") for line in revoked[1:]), revoked

    [pruned_keys] = _stdout_lines(_authsvc(tmp_path, "keys", "prune"))
    assert pruned_keys.startswith(("no signing key to remove", "removed signing key ")), pruned_keys

    pruned = _stdout_lines(_authsvc(tmp_path, "prune", "--older-than", "30d"))
    assert [line.split(" ")[:2] for line in pruned] == [["deleted", "0"]] * 4, pruned


def test_a_postgresql_database_that_does_not_exist_is_one_line_on_stderr(tmp_path, postgres_admin_url):
    name = f"authsvc_no_such_db_{secrets.token_hex(4)}"
    url = make_url(postgres_admin_url).set(drivername="postgresql+asyncpg", database=name)
    variables = {
        "AUTHSVC_DATABASE_URL": url.render_as_string(hide_password=False),
        "AUTHSVC_DB_TIMEOUT_SECONDS": "5",
    }
    for argv in (["serve"], ["serve", "--no-migrate"], ["migrate"], ["check"]):
        done = _authsvc(tmp_path, *argv, **variables)
        assert done.returncode in (2, 3), (argv, done.returncode)
        reason = "database unreachable" if argv == ["check"] else "database"
        *logged, error = done.stderr.splitlines()
        assert error == f'authsvc: {reason}: database "{name}" does not exist', argv
        # `serve` logs on stdout, `migrate` on stderr (the configuration line), `check` only warnings:
        # whichever stream, nothing but JSON log lines besides the error: no traceback.
        for line in [*logged, *done.stdout.splitlines()]:
            json.loads(line)
        if argv[0] != "migrate":
            assert logged == [], argv


def test_the_start_up_log_shows_a_database_user_without_a_password_as_it_is():
    url = "postgresql+asyncpg://authsvc@db.internal:5432/authsvc"
    described = Settings.from_env({"AUTHSVC_DATABASE_URL": url}).describe()
    record = logging.makeLogRecord({"msg": "configuration", "levelname": "INFO", "config": described})
    line = json.loads(JsonFormatter().format(record))
    assert line["config"]["database_url"] == url


def test_the_serving_line_shows_the_address_bound_not_the_one_clients_are_told(tmp_path):
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSVC_")}
    env |= {
        "AUTHSVC_DATA_DIR": str(tmp_path),
        "AUTHSVC_GRPC_LISTEN": f"0.0.0.0:{port}",
        "AUTHSVC_ALLOW_INSECURE": "true",
        "AUTHSVC_BCRYPT_ROUNDS": "4",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen([AUTHSVC, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_serving(f"127.0.0.1:{port}", process, log_path, seconds=30)
    finally:
        process.terminate()
        process.wait(timeout=30)
    entries = [json.loads(line) for line in log_path.read_text().splitlines()]
    [serving] = [entry for entry in entries if entry["message"] == "serving"]
    assert serving["grpc_listen"] == f"0.0.0.0:{port}"


def test_a_kid_that_starts_with_a_dash_is_revoked_like_any_other(tmp_path):
    """A kid is base64url: one in 64 starts with '-', which argparse would otherwise read as an option."""
    keys_dir = tmp_path / "keys"
    now = datetime.now(UTC)
    kids = {add_key(keys_dir, now).kid for _ in range(2)}
    while not any(kid.startswith("-") for kid in kids):
        kids.add(add_key(keys_dir, now).kid)
    dashed = next(kid for kid in kids if kid.startswith("-"))
    revoked = _stdout_lines(_authsvc(tmp_path, "keys", "revoke", dashed, AUTHSVC_KEYS_DIR=str(keys_dir)))
    assert revoked[0].startswith(f"revoked signing key {dashed};"), revoked
    assert dashed not in {key.kid for key in read_keys(keys_dir).keys}
