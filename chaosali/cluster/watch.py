"""Watching the cluster through a fault: sample a condition and report when it changed.

A drill's journal then tells the story in one activity output: when the API (or a node) went
down, for how long, and when it came back, instead of a single true/false at one instant.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Callable

from chaosali.errors import InvalidArgument

__all__ = ["watch"]

logger = logging.getLogger("chaostoolkit")

STOPS = ("never", "down", "back")


def watch(sample: Callable[[], bool], seconds: float, interval: float, stop: str = "never", what: str = "it") -> dict:
    """Sample ``sample()`` every ``interval`` s for up to ``seconds``; ``stop`` early once it was
    ``"down"`` (seen false) or is ``"back"`` (true again after being false).

    Returns ``{"samples", "first": bool, "last": bool, "changes": [{"at", "up"}],
    "down_seconds", "down_at", "back_at", "watched_seconds"}`` with ISO times.
    """
    if stop not in STOPS:
        raise InvalidArgument(f"stop {stop!r} must be one of {', '.join(STOPS)}")
    if not 0 < float(interval) <= float(seconds) <= 3600:
        raise InvalidArgument("watch: need 0 < interval <= seconds <= 3600")
    started = time.monotonic()
    clock = dt.datetime.now(dt.timezone.utc)
    changes: list[dict] = []
    samples, previous, down_since, down_total = 0, None, None, 0.0
    down_at = back_at = None
    while True:
        at = time.monotonic()
        up = bool(sample())
        samples += 1
        stamp = (clock + dt.timedelta(seconds=at - started)).isoformat()
        if up != previous:
            changes.append({"at": stamp, "up": up})
            logger.info("chaosali: %s %s at %s", what, "is up" if up else "is down", stamp)
            if not up:
                down_since, down_at = at, down_at or stamp
            elif down_since is not None:
                down_total += at - down_since
                down_since, back_at = None, stamp
        previous = up
        if (stop == "down" and not up) or (stop == "back" and up and back_at):
            break
        if at - started >= float(seconds):
            break
        time.sleep(max(0.0, float(interval) - (time.monotonic() - at)))
    if down_since is not None:
        down_total += time.monotonic() - down_since
    return {
        "samples": samples,
        "first": changes[0]["up"],
        "last": previous,
        "changes": changes,
        "down_at": down_at,
        "back_at": back_at,
        "down_seconds": round(down_total, 2),
        "watched_seconds": round(time.monotonic() - started, 2),
    }
