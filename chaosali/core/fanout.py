"""Doing the same thing on many endpoints at once, each failure kept apart from the others."""

from __future__ import annotations

import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, TypeVar

from chaosali.core.args import cause
from chaosali.core.errors import EndpointError

__all__ = ["Endpoint", "fan_out", "connect_tcp"]

logger = logging.getLogger("chaostoolkit")
E = TypeVar("E", bound="Endpoint")
T = TypeVar("T")


@dataclass(frozen=True)
class Endpoint:
    """An address and port, with an optional name for messages."""

    address: str
    port: int
    name: str | None = None

    def __str__(self) -> str:
        label = self.address if self.port == self.default_port else f"{self.address}:{self.port}"
        return f"{self.name} ({label})" if self.name else label

    @property
    def default_port(self) -> int | None:
        """The port not worth showing (None: always show it)."""
        return None


def fan_out(endpoints: list[E], work: Callable[[E], T], quiet: bool = False) -> tuple[dict[E, T], dict[E, str]]:
    """Run ``work`` on every endpoint in parallel; return (results, errors) keyed by endpoint.

    An :class:`EndpointError` is the endpoint's own failure; any other exception is a bug or an
    unexpected library error, still kept to its endpoint. Errors are logged unless ``quiet`` (a
    caller polling until endpoints answer expects them)."""
    results: dict[E, T] = {}
    errors: dict[E, str] = {}

    def one(endpoint: E) -> None:
        try:
            results[endpoint] = work(endpoint)
        except EndpointError as error:
            errors[endpoint] = str(error)
        except Exception as error:
            logger.debug("unexpected error on %s", endpoint, exc_info=True)
            errors[endpoint] = f"{type(error).__name__}: {error}"

    if endpoints:
        with ThreadPoolExecutor(max_workers=min(32, len(endpoints))) as pool:
            list(pool.map(one, endpoints))
    for endpoint, reason in errors.items() if not quiet else ():
        logger.warning("chaosali: %s: %s", endpoint, reason)
    return results, errors


def connect_tcp(address: str, port: int, timeout: float) -> bool:
    """True once a TCP connection to ``address``:``port`` opens (it is closed at once); else an
    :class:`EndpointError` worded the same for every prober."""
    try:
        socket.create_connection((address, port), timeout=timeout).close()
    except TimeoutError:
        raise EndpointError(f"no TCP connection to port {port} within {timeout:g} s") from None
    except OSError as error:
        raise EndpointError(f"TCP connection to port {port} failed: {cause(error)}") from None
    return True
