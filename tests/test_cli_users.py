"""`authsvc users disable|enable|list|show|set-role`: operators act on the database a running server serves,
and the server sees it at its next call."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2

from tests.cli import run_cli, run_cli_capturing_errors
from tests.status import expect_error

EMAIL = "ada@example.com"
ADMIN = "grace@example.com"
AUTHSVC = str(Path(sys.executable).parent / "authsvc")


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
def authsvc(auth_server, monkeypatch, capsys):
    """Run `authsvc ARGV` on the test server's data; its exit code and stdout."""

    async def _run(*argv: str) -> tuple[int, str]:
        return await run_cli(monkeypatch, capsys, auth_server.settings, auth_server.clock, *argv)

    return _run


@pytest.fixture
def authsvc_failing(auth_server, monkeypatch, capsys):
    """Run `authsvc ARGV`; its exit code, stdout and stderr."""

    async def _run(*argv: str) -> tuple[int, str, str]:
        return await run_cli_capturing_errors(
            monkeypatch, capsys, auth_server.settings, auth_server.clock, *argv
        )

    return _run


async def test_disable_ends_every_session_at_once_and_enable_lets_the_account_log_in_again(
    auth_server, register, login, authsvc
):
    user = await register()
    phone, laptop = await login(), await login()
    code, out = await authsvc("users", "disable", "Ada@Example.com")
    assert (code, out) == (0, f"disabled {EMAIL} (user {user.user_id}); revoked 2 sessions\n")
    stub = auth_server.stub
    for pair in (phone, laptop):
        await expect_error(
            stub.ListSessions(auth_pb2.ListSessionsRequest(), metadata=bearer(pair.access_token)),
            grpc.StatusCode.UNAUTHENTICATED,
            "SESSION_REVOKED",
        )
        await expect_error(
            stub.Refresh(auth_pb2.RefreshRequest(refresh_token=pair.refresh_token)),
            grpc.StatusCode.UNAUTHENTICATED,
            "SESSION_REVOKED",
        )
    await expect_error(login(), grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_DISABLED")

    code, out = await authsvc("users", "enable", EMAIL)
    assert (code, out) == (0, f"enabled {EMAIL} (user {user.user_id})\n")
    await login()


async def test_set_role_makes_an_admin_who_may_disable_accounts(auth_server, register, login, authsvc):
    await register()
    await register(ADMIN)
    grace = await login(ADMIN)
    disable = auth_pb2.SetUserDisabledRequest(email=EMAIL, disabled=True)
    await expect_error(
        auth_server.stub.SetUserDisabled(disable, metadata=bearer(grace.access_token)),
        grpc.StatusCode.PERMISSION_DENIED,
        "ADMIN_ONLY",
    )
    assert await authsvc("users", "set-role", ADMIN, "admin") == (0, f"{ADMIN} is now admin\n")
    answer = await auth_server.stub.SetUserDisabled(disable, metadata=bearer(grace.access_token))
    assert answer.disabled is True
    assert await authsvc("users", "set-role", ADMIN, "user") == (0, f"{ADMIN} is now user\n")
    await expect_error(
        auth_server.stub.SetUserDisabled(disable, metadata=bearer(grace.access_token)),
        grpc.StatusCode.PERMISSION_DENIED,
        "ADMIN_ONLY",
    )


async def test_list_prints_one_line_per_account_oldest_first(auth_server, register, authsvc):
    ada = await register()
    created_ada = auth_server.clock.now
    auth_server.clock.advance(60)
    grace = await register(ADMIN)
    created_grace = auth_server.clock.now
    await authsvc("users", "set-role", ADMIN, "admin")
    await authsvc("users", "disable", ADMIN)
    code, out = await authsvc("users", "list")
    assert code == 0
    assert [line.split("\t") for line in out.splitlines()] == [
        [EMAIL, ada.user_id, "user", f"{created_ada:%Y-%m-%dT%H:%M:%SZ}", "unverified", "enabled"],
        [ADMIN, grace.user_id, "admin", f"{created_grace:%Y-%m-%dT%H:%M:%SZ}", "unverified", "disabled"],
    ]
    code, out = await authsvc("users", "list", "--limit", "1")
    assert [line.split("\t")[0] for line in out.splitlines()] == [EMAIL]


async def test_list_of_no_accounts_prints_nothing(authsvc):
    assert await authsvc("users", "list") == (0, "")


async def test_show_prints_the_profile_and_the_live_session_count(auth_server, register, login, authsvc):
    user = await register()
    created = auth_server.clock.now
    first, second = await login(), await login()
    await auth_server.stub.Logout(auth_pb2.LogoutRequest(refresh_token=first.refresh_token))
    await auth_server.stub.UpdateProfile(
        auth_pb2.UpdateProfileRequest(display_name="Ada Lovelace"), metadata=bearer(second.access_token)
    )
    code, out = await authsvc("users", "show", EMAIL)
    assert code == 0
    assert out.splitlines() == [
        f"user_id: {user.user_id}",
        f"email: {EMAIL}",
        "display_name: Ada Lovelace",
        "role: user",
        f"created_at: {created:%Y-%m-%dT%H:%M:%SZ}",
        "email_verified: no",
        "disabled: no",
        "live_sessions: 1",
    ]
    auth_server.clock.advance(60)
    await authsvc("users", "disable", EMAIL)
    code, out = await authsvc("users", "show", EMAIL)
    assert f"disabled: yes (since {auth_server.clock.now:%Y-%m-%dT%H:%M:%SZ})" in out.splitlines()
    assert "live_sessions: 0" in out.splitlines()


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (("users", "disable", "nobody@example.com"), "authsvc: No account has this email\n"),
        (("users", "enable", "nobody@example.com"), "authsvc: No account has this email\n"),
        (("users", "show", "nobody@example.com"), "authsvc: No account has this email\n"),
        (("users", "set-role", "nobody@example.com", "admin"), "authsvc: No account has this email\n"),
    ],
)
async def test_an_unknown_email_is_one_line_on_stderr_and_exit_2(authsvc_failing, argv, error):
    assert await authsvc_failing(*argv) == (2, "", error)


async def test_a_malformed_email_is_one_line_on_stderr_and_exit_2(authsvc_failing):
    code, out, err = await authsvc_failing("users", "disable", "not an email")
    assert (code, out) == (2, "")
    assert err.startswith("authsvc: Email address is not valid") and err.count("\n") == 1


@pytest.mark.parametrize("argv", [("users", "set-role", EMAIL, "root"), ("users", "list", "--limit", "0")])
async def test_usage_errors_exit_2(authsvc_failing, register, argv):
    await register()
    with pytest.raises(SystemExit) as exited:
        await authsvc_failing(*argv)
    assert exited.value.code == 2


@pytest.mark.slow
def test_the_real_command_prints_only_its_result_on_stdout(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHSVC_")}
    env |= {"AUTHSVC_DATA_DIR": str(tmp_path), "AUTHSVC_LOG_LEVEL": "INFO"}

    def authsvc(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AUTHSVC, *argv], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    assert authsvc("migrate").returncode == 0
    listed = authsvc("users", "list")
    assert (listed.returncode, listed.stdout) == (0, "")
    assert '"message": "configuration"' in listed.stderr
    missing = authsvc("users", "disable", "nobody@example.com")
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr.splitlines()[-1] == "authsvc: No account has this email"
