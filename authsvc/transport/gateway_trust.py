"""Whether a call comes from this service's own REST gateway, whose forwarded client address is believed.

The gateway proves itself with the shared gateway secret (authsvc/gateway_secret.py), compared in constant
time, or, under mutual TLS, with a verified client certificate that names one of AUTHSVC_GATEWAY_TLS_NAMES
(its subject alternative names, or its common name when it has none: what gRPC reports as the peer's
identities). A call that is neither is recorded and throttled at its own peer address (client_info.py).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterable
from typing import Protocol

from authsvc.gateway_secret import METADATA_KEY
from authsvc.transport.client_info import Metadata, metadata_value

log = logging.getLogger(__name__)


class Context(Protocol):
    """What is read of a grpc.aio servicer context: the peer and, under TLS, its verified identities."""

    def peer(self) -> str: ...

    def peer_identities(self) -> Iterable[bytes] | None: ...


# A wrong secret is worth one warning (two processes reading different files is the likely cause), not
# one per call.
WARNING_INTERVAL_SECONDS = 60.0


class GatewayTrust:
    """Recognises the gateway's calls; `secret` None or `tls_names` empty turns that proof off."""

    def __init__(self, secret: str | None, tls_names: Iterable[str] = ()) -> None:
        self._secret = secret.encode("ascii") if secret else None
        self._tls_names = frozenset(tls_names)
        self._warned_at: float | None = None

    def is_gateway(self, metadata: Metadata | None, context: Context) -> bool:
        # The certificate first: a gateway known by it is not warned about a secret it need not show.
        return self._shows_certificate(context) or self._shows_secret(metadata, context)

    def _shows_secret(self, metadata: Metadata | None, context: Context) -> bool:
        offered = metadata_value(metadata, METADATA_KEY)
        if offered is None:
            return False
        if self._secret is not None and hmac.compare_digest(
            offered.encode("utf-8", "surrogateescape"), self._secret
        ):
            return True
        self._warn(context)
        return False

    def _shows_certificate(self, context: Context) -> bool:
        if not self._tls_names:
            return False
        identities = context.peer_identities()  # None unless TLS verified a client certificate
        return any(identity.decode("utf-8", "replace") in self._tls_names for identity in identities or ())

    def _warn(self, context: Context) -> None:
        now = time.monotonic()
        if self._warned_at is not None and now - self._warned_at < WARNING_INTERVAL_SECONDS:
            return
        self._warned_at = now
        log.warning(
            "a call showed a wrong gateway secret: its x-forwarded-for is not believed. Do the gateway and "
            "the server read the same AUTHSVC_GATEWAY_SECRET_FILE?",
            extra={"peer": context.peer()},
        )
