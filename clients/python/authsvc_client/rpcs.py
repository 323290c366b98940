"""The one table of AuthService RPCs that both clients read: per RPC, the request message it sends (whose
keyword arguments are its fields), the bearer it presents, and how its answer becomes the client's result.

`tests/clients/test_rpc_table.py` holds the table to the contract: exactly one row per method of
`authsvc.v1.AuthService`, an access-token bearer exactly where the contract says `requires_bearer`, and a
method of each client for each row. Retries are not a column: every RPC is retried alike on UNAVAILABLE
(channels.py says why that is safe).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar

from authsvc_proto.v1 import auth_pb2
from google.protobuf.message import Message

from authsvc_client import models

P = ParamSpec("P")
R = TypeVar("R")


class Bearer(enum.Enum):
    """What a call presents as `authorization: Bearer <...>`."""

    NONE = enum.auto()
    # The caller's access token: a required argument of the client method.
    ACCESS_TOKEN = enum.auto()
    # The secret given to the call, else the client's `introspection_secret`; nothing when neither is set.
    INTROSPECTION_SECRET = enum.auto()


@dataclass(frozen=True)
class Prepared(Generic[R]):
    """One call of a row, its request built and ready to send."""

    rpc: Rpc[..., R]
    request: Message


@dataclass(frozen=True)
class Rpc(Generic[P, R]):
    """One AuthService RPC as the clients make it."""

    name: str  # the method of authsvc.v1.AuthService
    request: Callable[P, Message]  # the request message class: the typed arguments are its fields
    result: Callable[[Any], R]  # the answer message -> what the client method returns
    bearer: Bearer = Bearer.NONE

    @property
    def method(self) -> str:
        """The name of the method of both clients: `LogoutAll` -> `logout_all`."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()

    def prepare(self, *args: P.args, **kwargs: P.kwargs) -> Prepared[R]:
        return Prepared(self, self.request(*args, **kwargs))


def _nothing(answer: Message) -> None:
    return None


def _revoked_sessions(
    answer: auth_pb2.LogoutAllResponse | auth_pb2.ChangePasswordResponse | auth_pb2.ResetPasswordResponse,
) -> int:
    return answer.revoked_sessions


REGISTER = Rpc("Register", auth_pb2.RegisterRequest, models.account)
LOGIN = Rpc("Login", auth_pb2.LoginRequest, models.token_pair)
REFRESH = Rpc("Refresh", auth_pb2.RefreshRequest, models.token_pair)
LOGOUT = Rpc("Logout", auth_pb2.LogoutRequest, _nothing)
LOGOUT_ALL = Rpc("LogoutAll", auth_pb2.LogoutAllRequest, _revoked_sessions, Bearer.ACCESS_TOKEN)
LIST_SESSIONS = Rpc("ListSessions", auth_pb2.ListSessionsRequest, models.sessions, Bearer.ACCESS_TOKEN)
REVOKE_SESSION = Rpc("RevokeSession", auth_pb2.RevokeSessionRequest, _nothing, Bearer.ACCESS_TOKEN)
INTROSPECT = Rpc("Introspect", auth_pb2.IntrospectRequest, models.introspection, Bearer.INTROSPECTION_SECRET)
GET_JWKS = Rpc("GetJwks", auth_pb2.GetJwksRequest, models.jwks)
GET_PROFILE = Rpc("GetProfile", auth_pb2.GetProfileRequest, models.profile, Bearer.ACCESS_TOKEN)
UPDATE_PROFILE = Rpc("UpdateProfile", auth_pb2.UpdateProfileRequest, models.profile, Bearer.ACCESS_TOKEN)
CHANGE_PASSWORD = Rpc(
    "ChangePassword", auth_pb2.ChangePasswordRequest, _revoked_sessions, Bearer.ACCESS_TOKEN
)
FORGOT_PASSWORD = Rpc("ForgotPassword", auth_pb2.ForgotPasswordRequest, _nothing)
RESET_PASSWORD = Rpc("ResetPassword", auth_pb2.ResetPasswordRequest, _revoked_sessions)
REQUEST_EMAIL_VERIFICATION = Rpc(
    "RequestEmailVerification", auth_pb2.RequestEmailVerificationRequest, _nothing, Bearer.ACCESS_TOKEN
)
VERIFY_EMAIL = Rpc("VerifyEmail", auth_pb2.VerifyEmailRequest, _nothing)
DELETE_ACCOUNT = Rpc("DeleteAccount", auth_pb2.DeleteAccountRequest, _nothing, Bearer.ACCESS_TOKEN)
SET_USER_DISABLED = Rpc(
    "SetUserDisabled", auth_pb2.SetUserDisabledRequest, models.user_status, Bearer.ACCESS_TOKEN
)

TABLE: tuple[Rpc[..., Any], ...] = (
    REGISTER,
    LOGIN,
    REFRESH,
    LOGOUT,
    LOGOUT_ALL,
    LIST_SESSIONS,
    REVOKE_SESSION,
    INTROSPECT,
    GET_JWKS,
    GET_PROFILE,
    UPDATE_PROFILE,
    CHANGE_PASSWORD,
    FORGOT_PASSWORD,
    RESET_PASSWORD,
    REQUEST_EMAIL_VERIFICATION,
    VERIFY_EMAIL,
    DELETE_ACCOUNT,
    SET_USER_DISABLED,
)
