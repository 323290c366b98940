"""Store outages leave the domain as ServiceUnavailable, whatever method met them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from authsvc.domain.errors import ServiceUnavailable
from authsvc.domain.observe import STORE_UNAVAILABLE, notify
from authsvc.store import StoreUnavailable

P = ParamSpec("P")
R = TypeVar("R")


def reports_store_outage(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Wrap a domain method so that StoreUnavailable is raised as ServiceUnavailable."""

    @wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except StoreUnavailable as exc:
            notify(STORE_UNAVAILABLE)
            raise ServiceUnavailable() from exc

    return wrapper
