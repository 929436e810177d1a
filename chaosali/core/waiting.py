"""Waiting until something holds or a deadline passes: the one polling loop of every domain."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(check: Callable[[], T], deadline: float, step: float,
               done: Callable[[T], object] = bool) -> tuple[bool, T]:
    """Call ``check`` until ``done`` holds of its result or ``time.monotonic()`` reaches
    ``deadline``, ``step`` seconds apart (never sleeping past the deadline); at least once.
    Returns whether it held, and the last result (what is still awaited, when it did not)."""
    while True:
        result = check()
        if done(result):
            return True, result
        left = deadline - time.monotonic()
        if left <= 0:
            return False, result
        time.sleep(min(step, left))
