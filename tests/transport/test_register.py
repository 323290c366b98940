"""Register: creates an account with a normalised email; bad input is INVALID_ARGUMENT with a reason."""

from __future__ import annotations

import grpc
import pytest
from authsvc_proto.v1 import auth_pb2

from tests.status import expect_error


async def test_register_returns_the_new_user_id_and_normalised_email(stub):
    answer = await stub.Register(auth_pb2.RegisterRequest(email="  Ada@Example.COM ", password="long enough"))
    assert answer.email == "ada@example.com"
    assert len(answer.user_id) == 36


async def test_a_registered_user_can_log_in_with_any_casing_of_the_email(stub, register, login):
    await register("ada@example.com")
    pair = await login(" ADA@example.com")
    assert pair.token_type == "Bearer"


async def test_registering_an_email_twice_is_already_exists_whatever_the_case(register):
    await register("ada@example.com")
    error = await expect_error(register("ADA@EXAMPLE.COM"), grpc.StatusCode.ALREADY_EXISTS, "EMAIL_TAKEN")
    assert error.details() == "Email is already registered"


@pytest.mark.parametrize(
    ("email", "password", "reason"),
    [
        ("not-an-email", "long enough", "INVALID_EMAIL"),
        ("", "long enough", "INVALID_EMAIL"),
        ("a@b@example.com", "long enough", "INVALID_EMAIL"),
        ("ada@example.com", "short", "WEAK_PASSWORD"),
        ("ada@example.com", "", "WEAK_PASSWORD"),
        ("ada@example.com", "x" * 73, "PASSWORD_TOO_LONG"),
        # 25 three-byte characters: 25 characters, 75 bytes, over bcrypt's 72-byte limit.
        ("ada@example.com", "€" * 25, "PASSWORD_TOO_LONG"),
    ],
)
async def test_invalid_registrations_are_invalid_argument_with_a_reason(register, email, password, reason):
    await expect_error(register(email, password), grpc.StatusCode.INVALID_ARGUMENT, reason)


async def test_a_password_of_exactly_72_bytes_is_accepted(register, login):
    await register("ada@example.com", "p" * 72)
    await login("ada@example.com", "p" * 72)


async def test_a_rejected_registration_creates_nothing(register):
    await expect_error(
        register("ada@example.com", "short"), grpc.StatusCode.INVALID_ARGUMENT, "WEAK_PASSWORD"
    )
    await register("ada@example.com")  # the email is still free
