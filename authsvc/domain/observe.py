"""Outcomes the domain reports as they happen, for whoever counts them (the transport's metrics).

The domain knows nothing about Prometheus: it names what happened (`notify("refresh")`) and an
`Observer` bound for the current call, if any, counts it. The binding is a context variable, so each
RPC reports to the server that runs it, even with several servers in one process (as in tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Protocol

# Beyond the audit event names (authsvc.domain.audit), which are notified as they are recorded:
STORE_UNAVAILABLE = "store_unavailable"


class Observer(Protocol):
    def observe(self, event: str, count: int) -> None:
        """Count `count` occurrences of `event`; must not raise and must not block."""


_current: ContextVar[Observer | None] = ContextVar("authsvc_observer", default=None)


def bind(observer: Observer) -> Token[Observer | None]:
    """Report the domain's events from now on in this task (and the tasks it starts) to `observer`, until
    `unbind` of the token returned. What `observed_by` does, without a context manager's generator, which
    costs more than the binding itself on every RPC."""
    return _current.set(observer)


def unbind(token: Token[Observer | None]) -> None:
    _current.reset(token)


@contextmanager
def observed_by(observer: Observer) -> Iterator[None]:
    """Report the domain's events inside this block (and the tasks it starts) to `observer`."""
    token = bind(observer)
    try:
        yield
    finally:
        unbind(token)


def notify(event: str, count: int = 1) -> None:
    """Tell the bound observer, if any, that `event` happened `count` times."""
    observer = _current.get()
    if observer is not None:
        observer.observe(event, count)
