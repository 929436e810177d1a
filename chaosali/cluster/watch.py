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
from chaosali.core.windows import Windows

__all__ = ["watch"]

logger = logging.getLogger("chaostoolkit")

STOPS = ("never", "down", "back", "up")
MAX_WATCH = 3600.0  # a watch is one activity of a drill: an hour is already long


def watch(sample: Callable[[], bool], seconds: float, interval: float, stop: str = "never", what: str = "it") -> dict:
    """Sample ``sample()`` every ``interval`` s for up to ``seconds``; ``stop`` early once it was
    ``"down"`` (seen false), is ``"back"`` (true again after being false) or is ``"up"`` (true, at once
    if it already is: waiting for a recovery that may be over).

    Returns ``{"samples", "first": bool, "last": bool, "changes": [{"at", "up"}],
    "down_seconds", "down_at", "back_at", "watched_seconds"}`` with ISO times.
    """
    stop = choice(stop, "stop", STOPS)
    seconds = number(seconds, "seconds", 0, MAX_WATCH, above=True)  # the argument is named seconds
    interval = read_seconds(interval, "interval", seconds)  # at most the watch: at least one sample
    started = time.monotonic()
    clock = dt.datetime.now(dt.timezone.utc)
    changes: list[dict] = []
    down = Windows()  # on the watch's own clock: seconds since it started
    samples, previous = 0, None
    while True:
        at = time.monotonic() - started
        up = bool(sample())
        samples += 1
        if up != previous:
            changes.append({"at": _stamp(clock, at), "up": up})
            logger.info("chaosali: %s %s at %s", what, "is up" if up else "is down", changes[-1]["at"])
        down.sample(up, at)
        previous = up
        if (stop == "down" and not up) or (stop == "back" and up and down.spans) or (stop == "up" and up):
            break
        if at >= seconds:
            break
        time.sleep(max(0.0, interval - (time.monotonic() - started - at)))
    watched = time.monotonic() - started
    came_back = [span["to"] for span in down.spans if span["to"] is not None]
    down.close(watched)
    down_at = _stamp(clock, down.spans[0]["from"]) if down.spans else None
    back_at = _stamp(clock, came_back[-1]) if came_back else None
    down_total = down.seconds()
    if down_at:
        ended = f"back at {back_at}" if previous else f"still down when the watch ended after {watched:.1f} s"
        evidence.observed(f"{what} down", True, f"first down at {down_at}, {ended}; down {down_total:.2f} s in all, "
                          f"as this watch saw it (a check every {interval:g} s)", expected=False)
    return {
        "samples": samples,
        "first": changes[0]["up"],
        "last": previous,
        "changes": changes,
        "down_at": down_at,
        "back_at": back_at,
        "down_seconds": round(down_total, 2),
        "watched_seconds": round(watched, 2),
    }


def _stamp(clock: dt.datetime, seconds: float) -> str:
    """A moment of the watch's clock (seconds since it started) as an ISO time."""
    return (clock + dt.timedelta(seconds=seconds)).isoformat()
