"""The account lifecycle over REST, through the real gateway to the real server: every route of the
profile, password change, forgotten password and reset, email verification and account deletion, with
the exact JSON of their answers; the reset and verification links are followed from the mail the server
writes (no AUTHSVC_SMTP_URL: .eml files under its data dir). The admin route exists only on a gateway told
to expose internal RPCs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from authsvc_proto.v1 import auth_pb2
from google.protobuf.message import Message

from authsvc.gateway import RunningGateway
from tests.conftest import PASSWORD, ServerHandle
from tests.gateway.conftest import running_gateway
from tests.gateway.fakes import FakeAuthServer
from tests.mailbox import Mailbox
from tests.roles import make_admin

# Most wait for the courier to deliver a mail (real timers); tests/domain has the rules fast.
pytestmark = pytest.mark.slow

EMAIL = "ada@example.com"
NEW_PASSWORD = "a brand new passphrase"
FORGOT_ANSWER = {"message": "If an account exists for this email, a reset link has been sent"}
PROFILE_FIELDS = {"user_id", "email", "email_verified", "display_name", "role", "created_at"}


@dataclass
class Rest:
    """The gateway's URL, an HTTP client, and the mail the server behind it sent."""

    base: str
    http: aiohttp.ClientSession
    mailbox: Mailbox

    async def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as answer:
            return answer.status, await answer.json(), dict(answer.headers)

    async def status_and_body(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        status, answer, _ = await self.call(method, path, body, token)
        return status, answer

    async def register(self, email: str = EMAIL) -> dict[str, Any]:
        status, body = await self.status_and_body(
            "POST", "/api/v1/auth/register", {"email": email, "password": PASSWORD}
        )
        assert status == 201, body
        return dict(body)

    async def login(self, email: str = EMAIL, password: str = PASSWORD) -> dict[str, Any]:
        status, body = await self.status_and_body(
            "POST", "/api/v1/auth/login", {"email": email, "password": password}
        )
        assert status == 200, body
        return dict(body)

    async def refresh_status(self, pair: dict[str, Any]) -> tuple[int, str]:
        status, body = await self.status_and_body(
            "POST", "/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]}
        )
        return status, str(body.get("reason", ""))

    async def login_status(self, email: str = EMAIL, password: str = PASSWORD) -> tuple[int, str]:
        status, body = await self.status_and_body(
            "POST", "/api/v1/auth/login", {"email": email, "password": password}
        )
        return status, str(body.get("reason", ""))


@pytest.fixture
async def rest(auth_server: ServerHandle, http: aiohttp.ClientSession) -> AsyncIterator[Rest]:
    async with running_gateway(auth_server.target) as gateway:
        yield Rest(gateway.url, http, Mailbox(auth_server.settings.data_dir))


# -- GET and PUT /api/v1/users/me ------------------------------------------------------------------------


async def test_get_users_me_answers_the_profile_of_the_bearer(rest: Rest) -> None:
    account = await rest.register()
    pair = await rest.login()

    status, profile, headers = await rest.call("GET", "/api/v1/users/me", token=pair["access_token"])

    assert status == 200
    assert set(profile) == PROFILE_FIELDS
    assert {key: value for key, value in profile.items() if key != "created_at"} == {
        "user_id": account["user_id"],
        "email": EMAIL,
        "email_verified": False,
        "display_name": "",
        "role": "user",
    }
    assert datetime.fromisoformat(profile["created_at"].replace("Z", "+00:00")).tzinfo is not None
    assert headers["Cache-Control"] == "no-store"


async def test_users_me_without_a_bearer_is_refused(rest: Rest) -> None:
    status, body = await rest.status_and_body("GET", "/api/v1/users/me")
    assert (status, body["reason"]) == (403, "NOT_AUTHENTICATED")
    status, body = await rest.status_and_body("GET", "/api/v1/users/me", token="junk")
    assert (status, body["reason"]) == (401, "TOKEN_INVALID")


async def test_put_users_me_sets_the_display_name_and_answers_the_profile(rest: Rest) -> None:
    await rest.register()
    token = (await rest.login())["access_token"]

    status, profile = await rest.status_and_body(
        "PUT", "/api/v1/users/me", {"display_name": " Ada Lovelace "}, token
    )

    assert status == 200
    assert set(profile) == PROFILE_FIELDS
    assert profile["display_name"] == "Ada Lovelace"
    assert (await rest.status_and_body("GET", "/api/v1/users/me", token=token))[1] == profile


async def test_put_users_me_refuses_a_name_over_100_characters(rest: Rest) -> None:
    await rest.register()
    token = (await rest.login())["access_token"]

    status, body = await rest.status_and_body("PUT", "/api/v1/users/me", {"display_name": "x" * 101}, token)

    assert (status, body["code"], body["reason"]) == (400, "INVALID_ARGUMENT", "DISPLAY_NAME_INVALID")


# -- POST /api/v1/auth/change-password -------------------------------------------------------------------


async def test_change_password_revokes_every_other_session_and_keeps_the_callers(rest: Rest) -> None:
    await rest.register()
    mine = await rest.login()
    other = await rest.login()

    status, body = await rest.status_and_body(
        "POST",
        "/api/v1/auth/change-password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        mine["access_token"],
    )

    assert (status, body) == (200, {"message": "Password changed successfully", "revoked_sessions": 1})
    assert await rest.refresh_status(other) == (401, "SESSION_REVOKED")
    assert (await rest.refresh_status(mine))[0] == 200
    assert await rest.login_status() == (401, "INVALID_CREDENTIALS")
    await rest.login(password=NEW_PASSWORD)


@pytest.mark.parametrize("server_settings", [{"login_max_failures_per_account": 2}], indirect=True)
async def test_a_wrong_current_password_is_401_and_counts_against_the_login_throttle(rest: Rest) -> None:
    await rest.register()
    token = (await rest.login())["access_token"]
    wrong = {"current_password": "not the password", "new_password": NEW_PASSWORD}

    for _ in range(2):
        status, body, headers = await rest.call("POST", "/api/v1/auth/change-password", wrong, token)
        assert (status, body["reason"], headers["WWW-Authenticate"]) == (401, "INVALID_CREDENTIALS", "Bearer")

    # The limit is reached: even the right password is refused at this address for now.
    assert await rest.login_status() == (429, "THROTTLED")


# -- POST /api/v1/auth/forgot-password and /reset-password ----------------------------------------------


async def test_forgot_password_is_202_with_the_same_answer_for_a_known_and_an_unknown_email(
    rest: Rest,
) -> None:
    await rest.register()

    unknown = await rest.status_and_body(
        "POST", "/api/v1/auth/forgot-password", {"email": "nobody@example.com"}
    )
    known = await rest.status_and_body("POST", "/api/v1/auth/forgot-password", {"email": EMAIL})

    assert unknown == known == (202, FORGOT_ANSWER)
    await rest.mailbox.next_link("reset", EMAIL)
    assert [str(message["To"]) for message in rest.mailbox.messages()] == [EMAIL]


async def test_forgot_password_refuses_what_is_no_email(rest: Rest) -> None:
    status, body = await rest.status_and_body("POST", "/api/v1/auth/forgot-password", {"email": "nope"})
    assert (status, body["reason"]) == (400, "INVALID_EMAIL")


@pytest.mark.parametrize(
    "server_settings", [{"forgot_max_per_email": 2, "forgot_max_per_address": 3}], indirect=True
)
async def test_forgot_password_is_throttled_per_email_and_per_address(rest: Rest) -> None:
    async def forgot(email: str) -> tuple[int, str, str | None]:
        status, body, headers = await rest.call("POST", "/api/v1/auth/forgot-password", {"email": email})
        return status, str(body.get("reason", "")), headers.get("Retry-After")

    assert [(await forgot(EMAIL))[0] for _ in range(2)] == [202, 202]
    status, reason, retry_after = await forgot(EMAIL)
    assert (status, reason) == (429, "THROTTLED") and retry_after is not None and int(retry_after) > 0
    # Another email from this address: one more fits under the address's limit of 3, then none.
    assert (await forgot("bob@example.com"))[:2] == (202, "")
    assert (await forgot("carol@example.com"))[:2] == (429, "THROTTLED")


async def test_reset_password_with_the_mailed_token_sets_the_password_and_revokes_every_session(
    rest: Rest,
) -> None:
    await rest.register()
    first, second = await rest.login(), await rest.login()
    assert (await rest.status_and_body("POST", "/api/v1/auth/forgot-password", {"email": EMAIL}))[0] == 202
    token = await rest.mailbox.next_token("reset", EMAIL)

    status, body = await rest.status_and_body(
        "POST", "/api/v1/auth/reset-password", {"token": token, "new_password": NEW_PASSWORD}
    )

    assert (status, body) == (200, {"message": "Password has been reset", "revoked_sessions": 2})
    for pair in (first, second):
        assert await rest.refresh_status(pair) == (401, "SESSION_REVOKED")
    assert await rest.login_status() == (401, "INVALID_CREDENTIALS")
    await rest.login(password=NEW_PASSWORD)


async def test_a_reset_token_works_once(rest: Rest) -> None:
    await rest.register()
    await rest.status_and_body("POST", "/api/v1/auth/forgot-password", {"email": EMAIL})
    token = await rest.mailbox.next_token("reset", EMAIL)
    body = {"token": token, "new_password": NEW_PASSWORD}
    assert (await rest.status_and_body("POST", "/api/v1/auth/reset-password", body))[0] == 200

    status, again = await rest.status_and_body("POST", "/api/v1/auth/reset-password", body)

    assert (status, again["code"], again["reason"]) == (400, "INVALID_ARGUMENT", "RESET_TOKEN_INVALID")


async def test_a_newer_reset_token_voids_the_older_one(rest: Rest) -> None:
    await rest.register()
    await rest.status_and_body("POST", "/api/v1/auth/forgot-password", {"email": EMAIL})
    older = await rest.mailbox.next_token("reset", EMAIL)
    await rest.status_and_body("POST", "/api/v1/auth/forgot-password", {"email": EMAIL})
    newer = await rest.mailbox.next_token("reset", EMAIL)

    status, body = await rest.status_and_body(
        "POST", "/api/v1/auth/reset-password", {"token": older, "new_password": NEW_PASSWORD}
    )

    assert (status, body["reason"]) == (400, "RESET_TOKEN_INVALID")
    status, _ = await rest.status_and_body(
        "POST", "/api/v1/auth/reset-password", {"token": newer, "new_password": NEW_PASSWORD}
    )
    assert status == 200


async def test_a_reset_token_expires_after_30_minutes(rest: Rest, auth_server: ServerHandle) -> None:
    await rest.register()
    await rest.status_and_body("POST", "/api/v1/auth/forgot-password", {"email": EMAIL})
    token = await rest.mailbox.next_token("reset", EMAIL)
    auth_server.clock.advance(30 * 60 + 1)

    status, body = await rest.status_and_body(
        "POST", "/api/v1/auth/reset-password", {"token": token, "new_password": NEW_PASSWORD}
    )

    assert (status, body["reason"]) == (400, "RESET_TOKEN_INVALID")
    await rest.login()  # the password is unchanged


async def test_a_made_up_reset_token_is_400(rest: Rest) -> None:
    status, body = await rest.status_and_body(
        "POST", "/api/v1/auth/reset-password", {"token": "made-up", "new_password": NEW_PASSWORD}
    )
    assert (status, body["reason"]) == (400, "RESET_TOKEN_INVALID")


# -- POST /api/v1/auth/verify-email/request and /verify-email --------------------------------------------


async def test_verifying_the_email_through_the_mailed_token(rest: Rest) -> None:
    await rest.register()
    token = (await rest.login())["access_token"]

    status, body = await rest.status_and_body("POST", "/api/v1/auth/verify-email/request", token=token)
    assert status == 202
    assert set(body) == {"message"} and body["message"]
    mailed = await rest.mailbox.next_token("verify", EMAIL)

    status, body = await rest.status_and_body("POST", "/api/v1/auth/verify-email", {"token": mailed})

    assert (status, body) == (200, {"message": "Email verified"})
    profile = (await rest.status_and_body("GET", "/api/v1/users/me", token=token))[1]
    assert profile["email_verified"] is True
    status, again = await rest.status_and_body("POST", "/api/v1/auth/verify-email", {"token": mailed})
    assert (status, again["code"], again["reason"]) == (400, "INVALID_ARGUMENT", "VERIFICATION_TOKEN_INVALID")


async def test_verify_email_request_needs_a_bearer(rest: Rest) -> None:
    status, body = await rest.status_and_body("POST", "/api/v1/auth/verify-email/request")
    assert (status, body["reason"]) == (403, "NOT_AUTHENTICATED")


async def test_a_made_up_verification_token_is_400(rest: Rest) -> None:
    status, body = await rest.status_and_body("POST", "/api/v1/auth/verify-email", {"token": "made-up"})
    assert (status, body["reason"]) == (400, "VERIFICATION_TOKEN_INVALID")


# -- DELETE /api/v1/users/me -----------------------------------------------------------------------------


async def test_delete_users_me_with_the_password_deletes_the_account_and_ends_its_sessions(
    rest: Rest,
) -> None:
    await rest.register()
    mine, other = await rest.login(), await rest.login()

    status, body = await rest.status_and_body(
        "DELETE", "/api/v1/users/me", {"password": PASSWORD}, mine["access_token"]
    )

    assert (status, body) == (200, {"message": "Account deleted"})
    for pair in (mine, other):
        assert (await rest.refresh_status(pair))[0] == 401
    assert (await rest.status_and_body("GET", "/api/v1/users/me", token=mine["access_token"]))[0] == 401
    assert await rest.login_status() == (401, "INVALID_CREDENTIALS")
    await rest.register()  # the email is free again


async def test_delete_users_me_with_a_wrong_password_or_none_keeps_the_account(rest: Rest) -> None:
    await rest.register()
    token = (await rest.login())["access_token"]

    wrong = await rest.status_and_body("DELETE", "/api/v1/users/me", {"password": "not the password"}, token)
    missing = await rest.status_and_body("DELETE", "/api/v1/users/me", None, token)

    assert (wrong[0], wrong[1]["reason"]) == (401, "INVALID_CREDENTIALS")
    assert (missing[0], missing[1]["reason"]) == (400, "INVALID_REQUEST")
    assert (await rest.status_and_body("GET", "/api/v1/users/me", token=token))[0] == 200


# -- POST /api/v1/admin/users/disabled (internal) --------------------------------------------------------


async def test_the_admin_route_is_not_routed_by_default(rest: Rest) -> None:
    status, body = await rest.status_and_body(
        "POST", "/api/v1/admin/users/disabled", {"email": EMAIL, "disabled": True}, "anything"
    )
    assert (status, body["reason"]) == (404, "ROUTE_NOT_FOUND")


async def test_an_admin_disables_an_account_through_an_exposing_gateway(
    auth_server: ServerHandle, http: aiohttp.ClientSession
) -> None:
    async with running_gateway(auth_server.target, expose_internal=True) as gateway:
        rest = Rest(gateway.url, http, Mailbox(auth_server.settings.data_dir))
        await rest.register("admin@example.com")
        await make_admin(auth_server.running.store, "admin@example.com")
        admin = (await rest.login("admin@example.com"))["access_token"]
        account = await rest.register()
        victim = await rest.login()
        path = "/api/v1/admin/users/disabled"

        refused = await rest.status_and_body(
            "POST", path, {"email": EMAIL, "disabled": True}, victim["access_token"]
        )
        status, body = await rest.status_and_body("POST", path, {"email": EMAIL, "disabled": True}, admin)

        assert (refused[0], refused[1]["reason"]) == (403, "ADMIN_ONLY")
        assert (status, body) == (
            200,
            {"user_id": account["user_id"], "email": EMAIL, "disabled": True, "revoked_sessions": 1},
        )
        assert await rest.login_status() == (403, "ACCOUNT_DISABLED")
        assert (await rest.refresh_status(victim))[0] == 401
        assert (await rest.status_and_body("GET", "/api/v1/users/me", token=victim["access_token"]))[0] == 401
        unknown = await rest.status_and_body(
            "POST", path, {"email": "nobody@example.com", "disabled": True}, admin
        )
        assert (unknown[0], unknown[1]["reason"]) == (404, "USER_NOT_FOUND")

        status, body = await rest.status_and_body("POST", path, {"email": EMAIL, "disabled": False}, admin)
        assert (status, body["disabled"], body["revoked_sessions"]) == (200, False, 0)
        await rest.login()


# -- the gateway's part alone, in front of a scripted server ---------------------------------------------


async def test_put_and_delete_on_users_me_carry_their_json_body_and_the_bearer_to_their_rpcs(
    fake_server: FakeAuthServer, fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    bearer = {"Authorization": "Bearer the-access-token"}
    url = fake_gateway.url + "/api/v1/users/me"
    async with http.put(url, json={"display_name": "Ada"}, headers=bearer) as put:
        assert put.status == 200
    async with http.delete(url, json={"password": PASSWORD}, headers=bearer) as delete:
        assert (delete.status, await delete.json()) == (200, {"message": ""})
    async with http.get(url, headers=bearer) as get:
        assert get.status == 200

    assert [(call.rpc, call.metadata["authorization"]) for call in fake_server.calls] == [
        ("UpdateProfile", "Bearer the-access-token"),
        ("DeleteAccount", "Bearer the-access-token"),
        ("GetProfile", "Bearer the-access-token"),
    ]
    assert fake_server.calls[0].request == auth_pb2.UpdateProfileRequest(display_name="Ada")
    assert fake_server.calls[1].request == auth_pb2.DeleteAccountRequest(password=PASSWORD)


@pytest.mark.parametrize(
    ("rpc", "path", "body", "bearer"),
    [
        ("ForgotPassword", "/api/v1/auth/forgot-password", {"email": EMAIL}, False),
        ("RequestEmailVerification", "/api/v1/auth/verify-email/request", None, True),
    ],
    ids=["forgot-password", "verify-email request"],
)
async def test_the_mail_requests_answer_202_with_their_message(
    fake_server: FakeAuthServer,
    fake_gateway: RunningGateway,
    http: aiohttp.ClientSession,
    rpc: str,
    path: str,
    body: Any,
    bearer: bool,
) -> None:
    output = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].methods_by_name[rpc].output_type

    async def sent(request: Message, context: Any) -> Message:
        answer: Message = getattr(auth_pb2, output.name)(message="sent")
        return answer

    fake_server.answers[rpc] = sent
    headers = {"Authorization": "Bearer t"} if bearer else {}
    async with http.post(fake_gateway.url + path, json=body, headers=headers) as answer:
        assert (answer.status, await answer.json()) == (202, {"message": "sent"})


async def test_the_admin_route_is_served_only_by_a_gateway_told_to_expose_internal_rpcs(
    fake_server: FakeAuthServer, http: aiohttp.ClientSession
) -> None:
    body = {"email": EMAIL, "disabled": True}
    bearer = {"Authorization": "Bearer admin-token"}
    for exposed, status in ((False, 404), (True, 200)):
        async with (
            running_gateway(fake_server.target, expose_internal=exposed) as gateway,
            http.post(gateway.url + "/api/v1/admin/users/disabled", json=body, headers=bearer) as answer,
        ):
            assert answer.status == status, await answer.json()
    assert [call.request for call in fake_server.calls] == [
        auth_pb2.SetUserDisabledRequest(email=EMAIL, disabled=True)
    ]
