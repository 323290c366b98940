"""GetJwks: an RFC 7517 key set that any JWT library verifies access tokens with, offline."""

from __future__ import annotations

from typing import Any

import jwt
from authsvc_proto.v1 import auth_pb2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format


async def jwks_json(auth_server) -> dict[str, Any]:
    answer = await auth_server.stub.GetJwks(auth_pb2.GetJwksRequest())
    # As the REST gateway prints it at GET /.well-known/jwks.json.
    return json_format.MessageToDict(
        answer, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


async def test_the_key_set_has_exactly_the_public_members_of_the_signing_key(auth_server, register, login):
    await register()
    pair = await login()
    document = await jwks_json(auth_server)
    (key,) = document["keys"]
    assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}  # never "d", never an empty member
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert key["kid"] == jwt.get_unverified_header(pair.access_token)["kid"]
    assert all(isinstance(value, str) and value for value in key.values())


async def test_pyjwt_verifies_an_access_token_with_the_published_key_set(auth_server, register, login):
    user = await register()
    pair = await login()
    key_set = jwt.PyJWKSet.from_dict(await jwks_json(auth_server))
    kid = jwt.get_unverified_header(pair.access_token)["kid"]
    claims = jwt.decode(
        pair.access_token, key_set[kid].key, algorithms=["EdDSA"], audience="authsvc", issuer="authsvc"
    )
    assert (claims["sub"], claims["sid"], claims["type"]) == (user.user_id, pair.session_id, "access")


async def test_a_token_not_signed_by_a_published_key_fails_verification(auth_server, register, login):
    await register()
    pair = await login()
    key_set = jwt.PyJWKSet.from_dict(await jwks_json(auth_server))
    header, payload, _ = pair.access_token.split(".")
    other = jwt.encode({"sub": "x"}, Ed25519PrivateKey.generate(), algorithm="EdDSA").split(".")[2]
    try:
        jwt.decode(
            f"{header}.{payload}.{other}", key_set.keys[0].key, algorithms=["EdDSA"], audience="authsvc"
        )
    except jwt.InvalidSignatureError:
        return
    raise AssertionError("a foreign signature verified")
