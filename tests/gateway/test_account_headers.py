"""The account page's files and the browser-hardening headers, over real HTTP (no browser).

Every answer of the gateway carries the strict Content-Security-Policy, nosniff and no-referrer; API answers
are never stored by a cache; the page's assets are versioned by content and cached as immutable.
"""

from __future__ import annotations

from html.parser import HTMLParser

import aiohttp
import pytest

from authsvc.gateway import RunningGateway
from authsvc.gateway.account import CONTENT_SECURITY_POLICY

STRICT_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def assert_hardened(headers: aiohttp.typedefs.LooseHeaders) -> None:
    assert headers["Content-Security-Policy"] == STRICT_POLICY  # type: ignore[index]
    assert headers["X-Content-Type-Options"] == "nosniff"  # type: ignore[index]
    assert headers["Referrer-Policy"] == "no-referrer"  # type: ignore[index]


class _Markup(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would refuse, and the page's asset links."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script":
            if not named.get("src"):
                self.inline.append("<script> without src")
            else:
                self.links.append(str(named["src"]))
        if tag == "link" and named.get("rel") in ("stylesheet", "icon"):
            self.links.append(str(named["href"]))
        self.inline += [f"{tag}[{name}]" for name in named if name == "style" or name.startswith("on")]


async def _page_links(http: aiohttp.ClientSession, gateway: RunningGateway) -> list[str]:
    async with http.get(gateway.url + "/account") as response:
        markup = _Markup()
        markup.feed(await response.text())
    assert markup.inline == []
    return markup.links


def test_the_policy_is_the_strict_one() -> None:
    assert CONTENT_SECURITY_POLICY == STRICT_POLICY


async def test_the_account_page_is_html_with_the_strict_headers_and_is_always_revalidated(
    fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(fake_gateway.url + "/account") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert response.charset == "utf-8"
        assert_hardened(response.headers)
        assert response.headers["Cache-Control"] == "no-cache"
        etag = response.headers["ETag"]
        assert "<h1>Your account</h1>" in await response.text()

    async with http.get(fake_gateway.url + "/account", headers={"If-None-Match": etag}) as response:
        assert response.status == 304
        assert response.headers["ETag"] == etag
        assert await response.read() == b""


async def test_the_page_has_no_inline_script_style_or_handlers_and_links_versioned_assets(
    fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    links = await _page_links(http, fake_gateway)

    assert sorted(link.split("?v=")[0] for link in links) == [
        "/account/static/account.css",
        "/account/static/account.js",
        "/account/static/icon.svg",
    ]
    assert all("?v=" in link for link in links)


@pytest.mark.parametrize(
    ("name", "content_type"), [("css", "text/css"), ("js", "text/javascript"), ("svg", "image/svg+xml")]
)
async def test_versioned_assets_are_cached_as_immutable_and_unversioned_ones_revalidated(
    fake_gateway: RunningGateway, http: aiohttp.ClientSession, name: str, content_type: str
) -> None:
    [link] = [link for link in await _page_links(http, fake_gateway) if f".{name}?" in link]

    async with http.get(fake_gateway.url + link) as response:
        assert (response.status, response.content_type) == (200, content_type)
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert_hardened(response.headers)
        body = await response.read()
    async with http.get(fake_gateway.url + link.split("?")[0]) as response:
        assert response.headers["Cache-Control"] == "no-cache"
        assert await response.read() == body


async def test_an_unknown_asset_is_a_404_in_the_error_shape(
    fake_gateway: RunningGateway, http: aiohttp.ClientSession
) -> None:
    async with http.get(fake_gateway.url + "/account/static/secret.py") as response:
        assert response.status == 404
        assert (await response.json())["reason"] == "ROUTE_NOT_FOUND"
        assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/api/v1/auth/login", 200),
        ("POST", "/api/v1/auth/refresh", 200),
        ("GET", "/api/v1/auth/sessions", 403),
        ("POST", "/api/v1/auth/logout-all", 403),
        ("GET", "/api/v1/auth/nowhere", 404),
        ("PUT", "/api/v1/auth/login", 405),
        ("GET", "/healthz", 200),
        ("GET", "/api/v1/openapi.json", 200),
    ],
)
async def test_api_answers_are_never_stored_and_carry_the_strict_headers(
    fake_gateway: RunningGateway, http: aiohttp.ClientSession, method: str, path: str, status: int
) -> None:
    async with http.request(method, fake_gateway.url + path, json={}) as response:
        assert response.status == status
        assert response.headers["Cache-Control"] == "no-store"
        assert_hardened(response.headers)


@pytest.mark.parametrize("view", ["/account/reset", "/account/verify"])
async def test_the_views_of_mailed_links_are_the_page_never_stored_and_send_no_referrer(
    fake_gateway: RunningGateway, http: aiohttp.ClientSession, view: str
) -> None:
    async with http.get(fake_gateway.url + "/account") as response:
        page = await response.text()

    async with http.get(fake_gateway.url + view + "?token=a-live-token") as response:
        assert (response.status, response.content_type) == (200, "text/html")
        # The URL holds a token: no cache may keep the answer under it, and no Referer may carry it on.
        assert response.headers["Cache-Control"] == "no-store"
        assert "ETag" not in response.headers
        assert_hardened(response.headers)
        assert await response.text() == page
