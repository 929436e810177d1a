"""What a journal's activities say, in a few plain lines safe for a terminal: an output told in
words, a process's exit status and stderr, control characters made harmless."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["exit_status", "output_lines", "printable", "status_words", "stderr_tail", "unexpected_exit"]

_TAIL = 5  # stderr lines a report shows; the HTML report's output details hold the rest
_LINE_MAX = 300
# what a terminal acts on: CSI (colours, cursor moves) and OSC (window title, hyperlinks) sequences,
# then any other C0 or C1 control character but the newline and the tab, the bidirectional
# overrides, embeddings, isolates and marks (text shown in another order than it is: "Trojan
# Source") and the line and paragraph separators (a line break where a terminal shows none)
_SEQUENCES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x9b[0-9;?]*[ -/]*[@-~]")
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Text safe for a terminal: escape sequences dropped, other control characters shown as
    ``\\xNN`` (a carriage return would let a line overwrite the one before it), bidirectional
    controls and line separators as ``\\uNNNN``."""
    return _CONTROLS.sub(_escaped, _SEQUENCES.sub("", text))


def _escaped(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def output_lines(output: Any) -> list[str]:
    """What an activity's output says, in a few lines (chaosali outputs; others as they are)."""
    if not isinstance(output, dict):
        return [] if output is None else [f"result: {output}"]
    status = exit_status(output)
    if status is not None:
        omitted, tail = stderr_tail(output)
        return ([f"exit status {status}"] + ([f"stderr: … {omitted} lines before"] if omitted else [])
                + [f"stderr: {line}" for line in tail])
    lines = []
    if "fault_id" in output:
        hosts = ", ".join(h.get("host", "?") for h in output.get("hosts", []) if h.get("ok"))
        lines.append(f"{output.get('kind', 'fault')} {output['fault_id']} on {hosts} at {output.get('started_at')}, "
                     f"heals by itself at {output.get('heals_at')}")
    if isinstance(output.get("skew_seconds"), (int, float)):  # faults that started together
        lines.append(f"started together at {output.get('start_at')}: {skew_text(output['skew_seconds'])} "
                     "between the first host and the last")
    if isinstance(output.get("targets"), dict) and output["targets"].get("why"):
        lines.append(f"targets: {output['targets']['why']}")
    if "down_seconds" in output:  # a watch
        if output.get("down_at"):
            ended = (f"back at {output.get('back_at')}" if output.get("last") is not False else
                     f"still down when the watch ended after {output.get('watched_seconds')} s")
            lines.append(f"first down at {output['down_at']}, {ended}; down {output['down_seconds']} s in all, "
                         "as this watch saw it")
        else:
            lines.append(f"never down in {output.get('watched_seconds')} s")
    for fault in output.get("faults") or []:  # a random drill: each fault as its host action told it
        lines += output_lines(fault)
    if "restored" in output:
        restored = {host: ids for host, ids in output["restored"].items() if ids}
        lines.append(f"restored: {restored or 'nothing left to restore'}")
    return lines


def skew_text(seconds: float) -> str:
    """How far apart hosts started a fault, in milliseconds: the figure ``start_together`` is about."""
    return f"skew {seconds * 1000:.1f} ms"


def exit_status(output: Any) -> int | None:
    """The exit status of a process activity: chaoslib records ``{"status", "stdout", "stderr"}``."""
    if isinstance(output, dict) and output.keys() == {"status", "stdout", "stderr"} and type(output["status"]) is int:
        return output["status"]
    return None


def unexpected_exit(output: Any, tolerance: Any) -> int | None:
    """A process's non-zero exit status that no tolerance asked for. chaoslib calls such an activity
    "succeeded" and only logs a warning; a report must not let it pass for one."""
    status = exit_status(output)
    return status if status and tolerance is None else None


def status_words(status: str, unexpected: int | None) -> str:
    return f"{status}, EXIT STATUS {unexpected}" if unexpected else status


def stderr_tail(output: dict[str, Any]) -> tuple[int, list[str]]:
    """A process output's last stderr lines, made printable, and how many lines come before them."""
    lines = [line[:_LINE_MAX] for line in (_CONTROLS.sub("", _SEQUENCES.sub("", raw)).rstrip() for raw in str(output["stderr"]).splitlines())
             if line]
    return max(0, len(lines) - _TAIL), lines[-_TAIL:]
