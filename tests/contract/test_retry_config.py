"""Which RPCs are retry-safe is part of the contract, and the service config every client uses follows it."""

from __future__ import annotations

import json

import pytest
from authsvc_proto.retry import NO_RETRIES, RetryPolicy, retry_safe_methods, service_config
from authsvc_proto.v1 import auth_pb2, options_pb2

SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
RETRY_SAFE = {
    "Refresh",  # a repeat inside the grace window is handed the same child
    "Logout",  # a repeat with the same token answers OK
    "LogoutAll",
    "ListSessions",
    "RevokeSession",
    "Introspect",
    "GetJwks",
    "GetProfile",
    "UpdateProfile",  # sets the same name again
    "SetUserDisabled",  # sets the same state again
}
# Not safe: a second Login opens a second session, a second Register answers EMAIL_TAKEN; the others send
# mail, set or check a password, or spend a one-time token.
NEVER_SENT_TWICE = {
    "Login",
    "Register",
    "ChangePassword",
    "ForgotPassword",
    "ResetPassword",
    "RequestEmailVerification",
    "VerifyEmail",
    "DeleteAccount",
}


def test_every_rpc_is_either_retry_safe_or_never_sent_twice_and_the_option_says_which():
    assert set(retry_safe_methods()) == RETRY_SAFE
    assert {method.name for method in SERVICE.methods} == RETRY_SAFE | NEVER_SENT_TWICE
    for name in NEVER_SENT_TWICE:
        assert not SERVICE.methods_by_name[name].GetOptions().Extensions[options_pb2.retry_safe]


def test_the_retry_policy_names_exactly_the_retry_safe_methods():
    config = json.loads(service_config(RetryPolicy(max_attempts=4, initial_backoff=0.05, max_backoff=0.5)))
    [method_config] = config["methodConfig"]
    names = {entry["method"] for entry in method_config["name"]}
    assert names == RETRY_SAFE
    assert {entry["service"] for entry in method_config["name"]} == {"authsvc.v1.AuthService"}
    assert method_config["retryPolicy"] == {
        "maxAttempts": 4,
        "initialBackoff": "0.05s",
        "maxBackoff": "0.5s",
        "backoffMultiplier": 2.0,
        "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
    }


def test_calls_are_spread_round_robin_over_healthy_replicas():
    config = json.loads(service_config())
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["healthCheckConfig"] == {"serviceName": ""}
    assert "healthCheckConfig" not in json.loads(service_config(health_check=False))


def test_without_retries_there_is_no_retry_policy_but_the_same_balancing():
    config = json.loads(service_config(NO_RETRIES))
    assert config["methodConfig"] == []
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]


@pytest.mark.parametrize(
    "arguments", [{"max_attempts": 0}, {"initial_backoff": 0}, {"initial_backoff": 2, "max_backoff": 1}]
)
def test_a_policy_that_cannot_work_is_refused(arguments):
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(**arguments)
