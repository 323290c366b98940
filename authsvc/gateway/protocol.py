"""Malformed HTTP (a bad request line, an oversized or invalid header) answered in the API's error shape.

aiohttp's parser rejects such a request before the application, and so before any middleware, sees it.
Its `RequestHandler.handle_error` then answers in plain text, echoing part of the request, without this
gateway's headers, and logs a full traceback at ERROR: any client could flood the log. aiohttp offers no
documented hook for that answer (aio-libs/aiohttp#3287, open since 2018): `handle_error` is the method
that builds it, so `ApiErrorRequestHandler` overrides that one method, `ApiErrorServer` (the protocol
factory) builds it for each connection, and `GatewayRunner` hands that server to the sites.

The answer: `{"detail", "code", "reason"}`, `X-Request-Id` (a fresh one: the headers were not read), the
security headers every answer carries and `Cache-Control: no-store`; the connection is then closed, as
aiohttp does, since the rest of the stream cannot be trusted. The log: one INFO line, no traceback.

Status 400 for every parse failure, oversized lines included. aiohttp raises the same `LineTooLong` for a
request line and for a header field over the limit, with nothing reliable to tell which: RFC 9112,
section 3 wants 414 for the first, RFC 6585, section 5 allows (MAY) 431 for the second, and 400 is right
for both. The reason word still says which kind of fault it was: REQUEST_HEAD_TOO_LARGE or MALFORMED_HTTP.
"""

from __future__ import annotations

import logging
import uuid
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from authsvc.gateway import errors
from authsvc.gateway.account import NO_STORE, SECURITY_HEADERS
from authsvc.gateway.errors import GatewayError
from authsvc.gateway.metadata import REQUEST_ID_HEADER, request_id_of

# aiohttp's own default for the request line and for each header field (name and value), made explicit
# so the answer can name it. Request heads of browsers and proxies stay well under it.
MAX_HEAD_LINE_BYTES = 8190

log = logging.getLogger("authsvc.gateway")


class ApiErrorRequestHandler(web.RequestHandler):
    """aiohttp's HTTP/1.1 protocol with `handle_error` answering in the API's shape (see the module)."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            # As aiohttp does: part of an answer went out already, the connection is broken.
            raise ConnectionError("Response is sent already, cannot send another response")
        error = _error_for(status, exc)
        # A request that failed to parse has no headers: it gets a fresh id, like any request without one.
        request_id = request_id_of(request) if isinstance(request, web.Request) else uuid.uuid4().hex
        fields = {"request_id": request_id, "peer": request.remote or "", "status": error.status}
        if isinstance(exc, HttpProcessingError):
            # The parser's message quotes the client's bytes: only the fault's name goes to the log.
            log.info("malformed HTTP request: %s (%s)", error.reason, type(exc).__name__, extra=fields)
        else:  # a failure of the gateway itself, past every middleware: a bug worth its traceback
            log.error("request failed outside the application", exc_info=exc, extra=fields)
        response = error.to_response()
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = NO_STORE
        response.headers[REQUEST_ID_HEADER] = request_id
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        # aiohttp also logs, at ERROR with a traceback, a body whose framing or content coding breaks
        # while it drains the rest after the answer (the application answered it 400 already).
        exc = kw.get("exc_info")
        if isinstance(exc, (HttpProcessingError, web.RequestPayloadError)):
            log.info("malformed HTTP request body (%s)", type(exc).__name__, extra={"peer": self._peer()})
        else:
            super().log_exception(*args, **kw)

    def _peer(self) -> str:
        peername = self.transport.get_extra_info("peername") if self.transport is not None else None
        return str(peername[0]) if isinstance(peername, tuple) and peername else ""


class ApiErrorServer(web.Server):
    """The protocol factory of the listening sockets: one `ApiErrorRequestHandler` per connection."""

    def __call__(self) -> web.RequestHandler:
        return ApiErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """`web.AppRunner` whose server is an `ApiErrorServer`, otherwise built exactly as aiohttp builds it."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()  # starts the application, as AppRunner does
        return ApiErrorServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            **server._kwargs,
        )


def _error_for(status: int, exc: BaseException | None) -> GatewayError:
    if isinstance(exc, LineTooLong):
        detail = f"The request line or a header field is over {MAX_HEAD_LINE_BYTES} bytes"
        return errors.bad_request(detail, "REQUEST_HEAD_TOO_LARGE")
    if isinstance(exc, HttpProcessingError):
        return errors.bad_request("Malformed HTTP request", "MALFORMED_HTTP")
    if status == HTTPStatus.INTERNAL_SERVER_ERROR:
        return errors.internal_error()
    try:  # besides parse failures aiohttp passes 500 (a handler raised) and 504 (a handler timed out)
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    code = "INVALID_ARGUMENT" if status < 500 else "INTERNAL"
    return GatewayError(status, code, phrase, phrase.upper().replace(" ", "_"))
