"""Access tokens carry `email_verified`: what the user's row said when the token was minted, by Login and by
every refresh; a token minted before the claim existed reads as unverified."""

from __future__ import annotations

import uuid

import pytest

from authsvc.domain.errors import TokenInvalid
from authsvc.domain.service import IssuedTokens
from authsvc.store import User
from tests.conftest import PASSWORD
from tests.domain.conftest import EMAIL, HERE, Domain
from tests.domain.test_access_tokens import _part, resigned


def claims_of(tokens: IssuedTokens) -> dict[str, object]:
    return _part(tokens.access_token.split(".")[1])


async def create_user(domain: Domain, *, verified: bool) -> None:
    password_hash = await domain.hasher.hash(PASSWORD.encode())
    now = domain.clock()
    verified_at = now if verified else None
    await domain.store.create_user(
        User(str(uuid.uuid4()), EMAIL, password_hash, "user", now, email_verified_at=verified_at)
    )


@pytest.mark.parametrize("verified", [True, False])
async def test_login_and_refresh_mint_the_rows_verification(domain: Domain, verified):
    await create_user(domain, verified=verified)
    logged_in = await domain.login()
    refreshed = await domain.refresh(logged_in)
    replayed = await domain.auth.refresh(logged_in.refresh_token, HERE)  # the parent, inside the grace window
    for tokens in (logged_in, refreshed, replayed):
        assert claims_of(tokens)["email_verified"] is verified
        assert (await domain.caller(tokens)).email_verified is verified


async def test_a_token_minted_before_the_claim_existed_reads_as_unverified(domain: Domain):
    await domain.register()
    old = resigned(domain, (await domain.login()).access_token, email_verified=None)
    assert "email_verified" not in _part(old.split(".")[1])
    assert (await domain.sessions.authenticate(old)).email_verified is False


@pytest.mark.parametrize("claim", ["true", 1, 0, [True]])
async def test_a_claim_that_is_not_a_boolean_is_invalid(domain: Domain, claim):
    await domain.register()
    forged = resigned(domain, (await domain.login()).access_token, email_verified=claim)
    with pytest.raises(TokenInvalid):
        await domain.sessions.authenticate(forged)
