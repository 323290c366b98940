"""Bodies must be declared JSON: what a browser may send cross-origin without a preflight is refused, 415.

A "simple" cross-origin request (text/plain, a form, an untyped Blob) needs no CORS preflight, so any web
page could otherwise make its visitors' browsers register accounts or try passwords here. An empty body
carries nothing to forge and stays accepted under any Content-Type, or none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from authsvc.gateway import RunningGateway, build_document, service_routes
from tests.gateway.fakes import FakeAuthServer
from tests.gateway.test_account_headers import assert_hardened

LOGIN = "/api/v1/auth/login"
LOGIN_JSON = b'{"email": "ada@example.com", "password": "correct horse"}'
UNSUPPORTED = {
    "detail": "The request body must be JSON sent as Content-Type: application/json (UTF-8)",
    "code": "INVALID_ARGUMENT",
    "reason": "UNSUPPORTED_MEDIA_TYPE",
}
ACCOUNT_JS = Path(__file__).resolve().parents[2] / "authsvc" / "gateway" / "static" / "account.js"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",  # what <form enctype="text/plain"> and fetch with a string body send
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "application/jsonp",
        "application/merge-patch+json",
        "application/json; charset=iso-8859-1",
        "application/json; charset=utf-16",
        "application/json; version=2",
        "application/json, text/plain",
        "text/plain; x=application/json",
    ],
)
async def test_a_json_body_under_another_content_type_is_415_without_a_call(
    fake_server: FakeAuthServer, fake_gateway: RunningGateway, http: aiohttp.ClientSession, content_type: str
) -> None:
    headers = {"Content-Type": content_type, "X-Request-Id": "req-415"}
    async with http.post(fake_gateway.url + LOGIN, data=LOGIN_JSON, headers=headers) as response:
        assert response.status == 415
        assert await response.json() == UNSUPPORTED
        assert response.content_type == "application/json"
        assert response.headers["X-Request-Id"] == "req-415"
        assert response.headers["Cache-Control"] == "no-store"
        assert_hardened(response.headers)
    assert fake_server.calls == []


async def test_a_json_body_without_content_type_is_415(
    fake_server: FakeAuthServer, fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    # fetch() with a Blob of no type sends no Content-Type at all: still a "simple" request.
    async with http.post(
        fake_gateway.url + "/api/v1/auth/register", data=LOGIN_JSON, skip_auto_headers=["Content-Type"]
    ) as response:
        assert "Content-Type" not in response.request_info.headers
        assert (response.status, await response.json()) == (415, UNSUPPORTED)
    assert fake_server.calls == []


async def test_a_chunked_body_under_another_content_type_is_415(
    fake_server: FakeAuthServer, fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: refused once read
        yield LOGIN_JSON

    headers = {"Content-Type": "text/plain"}
    async with http.post(fake_gateway.url + LOGIN, data=chunks(), headers=headers) as response:
        assert "Content-Length" not in response.request_info.headers
        assert (response.status, await response.json()) == (415, UNSUPPORTED)
    assert fake_server.calls == []


async def test_two_content_type_headers_are_refused_by_the_parser(
    fake_server: FakeAuthServer, fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    # aiohttp refuses a repeated Content-Type as malformed HTTP; the answer still has the API's shape.
    headers = [("Content-Type", "application/json"), ("Content-Type", "text/plain")]
    async with http.post(fake_gateway.url + LOGIN, data=LOGIN_JSON, headers=headers) as response:
        assert response.status == 400
        assert (await response.json())["reason"] == "MALFORMED_HTTP"
        assert_hardened(response.headers)
    assert fake_server.calls == []


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        'application/json; charset="utf-8"',
        "application/json;",
    ],
)
async def test_application_json_with_at_most_a_utf8_charset_is_accepted(
    fake_server: FakeAuthServer, fake_gateway: RunningGateway, http: aiohttp.ClientSession, content_type: str
) -> None:
    headers = {"Content-Type": content_type}
    async with http.post(fake_gateway.url + LOGIN, data=LOGIN_JSON, headers=headers) as response:
        assert response.status == 200
    [call] = fake_server.calls
    assert call.rpc == "Login"
    assert call.request.email == "ada@example.com"  # type: ignore[attr-defined]


@pytest.mark.parametrize("content_type", [None, "application/octet-stream", "text/plain"])
async def test_an_empty_body_is_the_empty_message_under_any_content_type(
    fake_server: FakeAuthServer,
    fake_gateway: RunningGateway,
    http: aiohttp.ClientSession,
    content_type: str | None,
) -> None:
    # `curl -X POST`, aiohttp's client (which labels it application/octet-stream), the page's logout-all.
    headers = {"Authorization": "Bearer abc"} | ({"Content-Type": content_type} if content_type else {})
    skip = [] if content_type else ["Content-Type"]
    url = fake_gateway.url + "/api/v1/auth/logout-all"
    async with http.post(url, headers=headers, skip_auto_headers=skip) as response:
        assert response.request_info.headers.get("Content-Type") == content_type
        assert response.status == 200
    assert [call.rpc for call in fake_server.calls] == ["LogoutAll"]


def test_the_openapi_document_lists_415_on_every_route_with_a_body() -> None:
    routes = service_routes(include_internal=True)
    document = build_document(routes)
    for route in routes:
        operation = document["paths"][route.template][route.http_method.lower()]
        if route.body:
            assert list(operation["requestBody"]["content"]) == ["application/json"]
            schema = operation["responses"]["415"]["content"]["application/json"]["schema"]
            assert schema["$ref"] == "#/components/schemas/Error"
            assert schema["properties"]["reason"] == {"enum": ["UNSUPPORTED_MEDIA_TYPE"]}
        else:
            assert "415" not in operation["responses"]


def test_the_account_page_declares_every_body_it_sends_as_json() -> None:
    script = ACCOUNT_JS.read_text()
    assert 'if (body !== undefined) headers["Content-Type"] = "application/json";' in script
    assert "body: body === undefined ? undefined : JSON.stringify(body)," in script
    assert script.count("fetch(") == 1  # every call goes through that one request() helper
