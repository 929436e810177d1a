"""Watching the cluster through a fault: sample a condition and report when it changed.

A drill's journal then tells the story in one activity output: when the API (or a node) went
down, for how long, and when it came back, instead of a single true/false at one instant.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Callable

from chaosali.core import evidence
from chaosali.core.args import choice, number, seconds as read_seconds

__all__ = ["watch"]

logger = logging.getLogger("chaostoolkit")

STOPS = ("never", "down", "back")
MAX_WATCH = 3600.0  # a watch is one activity of a drill: an hour is already long


def watch(sample: Callable[[], bool], seconds: float, interval: float, stop: str = "never", what: str = "it") -> dict:
    """Sample ``sample()`` every ``interval`` s for up to ``seconds``; ``stop`` early once it was
    ``"down"`` (seen false) or is ``"back"`` (true again after being false).

    Returns ``{"samples", "first": bool, "last": bool, "changes": [{"at", "up"}],
    "down_seconds", "down_at", "back_at", "watched_seconds"}`` with ISO times.
    """
    stop = choice(stop, "stop", STOPS)
    seconds = number(seconds, "seconds", 0, MAX_WATCH, above=True)  # the argument is named seconds
    interval = read_seconds(interval, "interval", seconds)  # at most the watch: at least one sample
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
        if at - started >= seconds:
            break
        time.sleep(max(0.0, interval - (time.monotonic() - at)))
    if down_since is not None:
        down_total += time.monotonic() - down_since
    if down_at:
        ended = (f"back at {back_at}" if previous else
                 f"still down when the watch ended after {time.monotonic() - started:.1f} s")
        evidence.observed(f"{what} down", True, f"first down at {down_at}, {ended}; down {down_total:.2f} s in all",
                          expected=False)
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
