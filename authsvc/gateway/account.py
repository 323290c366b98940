"""The account page (`GET /account`): static HTML, CSS, one ES module and an icon shipped in this package.

The page is one more client of the REST routes; the gateway only serves its files and the headers that
keep a browser safe. No business rules live here.

Headers, on every answer of the gateway (API, errors and page alike):
- `Content-Security-Policy`: only this origin's script, style and fetches; no inline script or style, no
  framing, no form posts (the page sends JSON with fetch). One policy fits both the page and the JSON API.
- `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` (tokens never leak in a Referer).
- `Cache-Control: no-store` unless the handler chose otherwise: token pairs and session lists must never
  sit in a cache (RFC 6749, section 5.1; RFC 9111, section 5.2.2.5).
The page itself is `no-cache` with an ETag (always revalidated, cheap when unchanged); its CSS, module and
icon are linked with a content hash in the query, so those links may be cached for a year as immutable.

The links in mail open the same page at `/account/reset?token=...` and `/account/verify?token=...`; the
page's module routes on the path. Those answers are `no-store`, so that no cache keeps a copy under a
URL holding a live token; the module takes the token out of the address bar as soon as it has read it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

ACCOUNT_PATH = "/account"
# The views of the links in mail (authsvc/mail/compose.py): the same page, which reads the token.
LINK_VIEW_PATHS = (ACCOUNT_PATH + "/reset", ACCOUNT_PATH + "/verify")
STATIC_PREFIX = "/account/static/"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
NO_STORE = "no-store"
PAGE_CACHE_CONTROL = "no-cache"
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"

_PAGE = "account.html"
_ASSET_TYPES: Mapping[str, str] = {
    "account.css": "text/css",
    "account.js": "text/javascript",
    "icon.svg": "image/svg+xml",
}


@dataclass(frozen=True)
class StaticFile:
    """One file as served: its bytes, media type, strong ETag (RFC 9110, section 8.8.3) and version."""

    body: bytes
    content_type: str
    etag: str
    version: str


def _static_file(body: bytes, content_type: str) -> StaticFile:
    digest = hashlib.sha256(body).hexdigest()
    return StaticFile(body=body, content_type=content_type, etag=f'"{digest[:32]}"', version=digest[:12])


def load_files() -> tuple[StaticFile, dict[str, StaticFile]]:
    """The page, with its asset links versioned by content hash, and the assets by name.

    Raises FileNotFoundError when the package was installed without its static files.
    """
    folder = resources.files("authsvc.gateway").joinpath("static")
    assets = {
        name: _static_file(folder.joinpath(name).read_bytes(), content_type)
        for name, content_type in _ASSET_TYPES.items()
    }
    page = folder.joinpath(_PAGE).read_text(encoding="utf-8")
    for name, asset in assets.items():
        link = f'"{STATIC_PREFIX}{name}"'
        if link not in page:
            raise FileNotFoundError(f"{_PAGE} does not link {STATIC_PREFIX}{name}")
        page = page.replace(link, f'"{STATIC_PREFIX}{name}?v={asset.version}"')
    return _static_file(page.encode("utf-8"), "text/html"), assets


def add_account_routes(app: web.Application) -> None:
    """Serve the page and its assets, and add the security headers to every answer of `app`."""
    page, assets = load_files()

    async def serve_page(request: web.Request) -> web.StreamResponse:
        return _answer(request, page, PAGE_CACHE_CONTROL)

    async def serve_link_view(request: web.Request) -> web.StreamResponse:
        # Never stored, not even for revalidation: the URL carries a token.
        return web.Response(
            body=page.body,
            content_type=page.content_type,
            charset="utf-8",
            headers={"Cache-Control": NO_STORE},
        )

    async def serve_asset(request: web.Request) -> web.StreamResponse:
        asset = assets.get(request.match_info["name"])
        if asset is None:
            raise web.HTTPNotFound()
        # Only the link the page carries is immutable; any other version is revalidated.
        fresh = request.query.get("v") == asset.version
        return _answer(request, asset, IMMUTABLE_CACHE_CONTROL if fresh else PAGE_CACHE_CONTROL)

    app.router.add_get(ACCOUNT_PATH, serve_page)
    for path in LINK_VIEW_PATHS:
        app.router.add_get(path, serve_link_view)
    app.router.add_get(STATIC_PREFIX + "{name}", serve_asset)
    app.on_response_prepare.append(_add_security_headers)


def _answer(request: web.Request, file: StaticFile, cache_control: str) -> web.Response:
    headers = {"ETag": file.etag, "Cache-Control": cache_control}
    if file.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=file.body, content_type=file.content_type, charset="utf-8", headers=headers)


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", NO_STORE)
