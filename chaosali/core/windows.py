"""Down windows from up/down samples: the one way a watch, the impact recorder and the measures
turn samples into outages.

A window opens at the first sample that is down and closes at the first sample up again after it,
so its resolution is the sampling's: a watch's interval, the recorder's /readyz once a second, a
workload's watch events (as they arrive, a fraction of a second after the change).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Windows"]


class Windows:
    """The down windows seen so far, each ``{"from": at, "to": at or None, ...}``; ``at`` is a
    moment on any one clock (seconds, or an ISO time), as the caller samples it."""

    def __init__(self, spans: list[dict[str, Any]] | None = None) -> None:
        self.spans: list[dict[str, Any]] = spans if spans is not None else []

    @property
    def down(self) -> bool:
        """Whether the last window is still open."""
        return bool(self.spans) and self.spans[-1]["to"] is None

    def sample(self, up: bool, at: Any, **about: Any) -> str | None:
        """Take one sample: "down" when it opens a window (``about`` goes into it, e.g. why),
        "back" when it closes one, None when nothing changed."""
        if not up and not self.down:
            self.spans.append({"from": at, "to": None, **about})
            return "down"
        if up and self.down:
            self.spans[-1]["to"] = at
            return "back"
        return None

    def close(self, at: Any) -> None:
        """End an open window at ``at``: the sampling ended while down."""
        if self.down:
            self.spans[-1]["to"] = at

    def seconds(self) -> float:
        """The time spent down, on a clock of seconds (every window closed)."""
        return sum(span["to"] - span["from"] for span in self.spans)
