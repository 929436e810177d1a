"""A journal read part by part, before any report looks at it.

A journal is a file anyone can hand to ``chaosali report``: its parts may have any type. Each
part a report interprets is checked here against the shape that chaoslib, chaosali's
activities and its impact recorder write (``_JOURNAL`` below). A part of the wrong type (a
``duration`` of ``"12.5"``, a ``run`` entry that is a string, ``steady_state_met: "true"``, a
number that is infinite or beyond ``_LARGEST``) is left out, and the report gets one line
saying what is wrong and where; the rest is reported as usual. Nesting deeper than
``MAX_DEPTH`` levels is cut there. So the figures and every renderer can trust the types of
what they read.

The problem lines name where a part is and what type it has, never its value (a value could
be a secret; they are masked with the journal anyway).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from chaosali.core import extensions

__all__ = ["MAX_DEPTH", "PLAN_EXTENSION", "Reading", "kept", "read_journal"]

MAX_DEPTH = 100  # levels of nesting kept: a Kubernetes object in an output needs about 15
_LARGEST = 1e9  # seconds (31 years), counts, offsets: larger is no measurement
_SHOWN = 20  # problem lines a report shows; the others are counted
_OUT = object()  # a part left out


class _Problems:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.more = 0

    def add(self, where: str, value: Any, wanted: str) -> object:
        return self.note(f"{where}: {_kind(value)}, not {wanted}: left out")

    def note(self, line: str) -> object:
        if len(self.lines) < _SHOWN:
            self.lines.append(line)
        else:
            self.more += 1
        return _OUT


Shape = Callable[[Any, str, _Problems], Any]  # the value as read, or _OUT (after noting why)


@dataclass(frozen=True)
class Reading:
    journal: dict[str, Any]  # the usable parts, in chaoslib's layout
    problems: list[str]  # one line per part left out


def read_journal(raw: dict[str, Any]) -> Reading:
    """The usable parts of a journal (a dict with an ``experiment`` object), and what was left out."""
    problems = _Problems()
    deep = _deeper_than(raw, MAX_DEPTH)
    if deep:
        problems.note(f"{deep}: nested deeper than {MAX_DEPTH} levels: cut there")
        raw = _cut(raw, MAX_DEPTH)
    journal = _JOURNAL(raw, "journal", problems)
    more = [f"… and {problems.more} more parts left out"] if problems.more else []
    return Reading(journal, problems.lines + more)


# -- the shapes -------------------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number out of range" if _number(value) is None else "a number"
    return {str: "a string", list: "a list", dict: "an object", type(None): "null"}.get(type(value), "a value")


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):  # JSON integers have no size limit: too large for a float
        return value if abs(value) <= _LARGEST else None
    return value if math.isfinite(value) and abs(value) <= _LARGEST else None


def ANY(value: Any, where: str, problems: _Problems) -> Any:
    return value


def TEXT(value: Any, where: str, problems: _Problems) -> Any:
    return value if isinstance(value, str) else problems.add(where, value, "text")


def FLAG(value: Any, where: str, problems: _Problems) -> Any:
    return value if isinstance(value, bool) else problems.add(where, value, "true or false")


def NUMBER(value: Any, where: str, problems: _Problems) -> Any:
    return value if _number(value) is not None else problems.add(where, value, f"a number within ±{_LARGEST:g}")


def SECONDS(value: Any, where: str, problems: _Problems) -> Any:
    number = _number(value)
    return value if number is not None and number >= 0 else problems.add(where, value, "a number of seconds")


def WHOLE(value: Any, where: str, problems: _Problems) -> Any:
    return value if isinstance(_number(value), int) else problems.add(where, value, "a whole number")


def TIME(value: Any, where: str, problems: _Problems) -> Any:
    """An ISO 8601 moment as text, or null (not known); the figures parse it."""
    return value if value is None or isinstance(value, str) else problems.add(where, value, "a time")


def ONE_OF(*choices: str) -> Shape:
    """One of these words."""
    wanted = " or ".join(f'"{choice}"' for choice in choices)
    return lambda value, where, problems: value if value in choices else problems.add(where, value, wanted)


def OPT(shape: Shape) -> Shape:
    """``shape``, or null."""
    return lambda value, where, problems: None if value is None else shape(value, where, problems)


def EITHER(first: Shape, second: Shape, wanted: str) -> Shape:
    def read(value: Any, where: str, problems: _Problems) -> Any:
        quiet = _Problems()
        for shape in (first, second):
            read_value = shape(value, where, quiet)
            if read_value is not _OUT:
                return read_value
        return problems.add(where, value, wanted)
    return read


def LIST(item: Shape) -> Shape:
    """A list; its items of the wrong shape are left out."""
    def read(value: Any, where: str, problems: _Problems) -> Any:
        if not isinstance(value, list):
            return problems.add(where, value, "a list")
        items = [item(element, f"{where}[{index}]", problems) for index, element in enumerate(value)]
        return kept(value, [element for element in items if element is not _OUT])
    return read


def MAP(item: Shape) -> Shape:
    """An object of named items (workloads, nodes...); those of the wrong shape are left out."""
    def read(value: Any, where: str, problems: _Problems) -> Any:
        if not isinstance(value, dict):
            return problems.add(where, value, "an object")
        items = ((name, item(element, f"{where}.{name}", problems)) for name, element in value.items())
        return kept(value, {name: element for name, element in items if element is not _OUT})
    return read


def OBJ(fields: dict[str, Shape], required: tuple[str, ...] = ()) -> Shape:
    """An object whose ``fields`` are read (others kept as they are); without a usable ``required``
    field the object itself is left out."""
    def read(value: Any, where: str, problems: _Problems) -> Any:
        if not isinstance(value, dict):
            return problems.add(where, value, "an object")
        out = dict(value)
        for name, shape in fields.items():
            if name in out:
                out[name] = shape(out[name], f"{where}.{name}", problems)
                if out[name] is _OUT:
                    del out[name]
        missing = [name for name in required if name not in out]
        return problems.note(f"{where}: no usable {missing[0]}: left out") if missing else kept(value, out)
    return read


def kept(value: dict[Any, Any] | list[Any], read: dict[Any, Any] | list[Any]) -> Any:
    """``value`` itself when ``read`` (its copy, read or masked) holds the very same keys and items:
    a large journal is then not held twice. Shared by the masking (``chaosali.report.redact``)."""
    if len(read) != len(value):
        return read
    if isinstance(value, dict):
        pairs = zip(value.items(), read.items())  # type: ignore[union-attr]
        return value if all(a is b and x is y for (a, x), (b, y) in pairs) else read
    return value if all(a is b for a, b in zip(value, read)) else read


# -- what reports read ------------------------------------------------------------------------------------

IMPACT_EXTENSION = extensions.IMPACT
SAFETY_EXTENSION = extensions.SAFETY
PLAN_EXTENSION = extensions.PLAN


def _output(value: Any, where: str, problems: _Problems) -> Any:
    """An activity's output: any value; the fields of chaosali's outputs that reports interpret
    (a fault, a watch, a restore, a process) are checked wherever they appear in an object."""
    return _OUTPUT(value, where, problems) if isinstance(value, dict) else value


_HOST = OBJ({"host": TEXT, "ok": FLAG})
_OUTPUT = OBJ({
    "fault_id": EITHER(TEXT, WHOLE, "text"), "kind": TEXT, "action": TEXT, "started_at": TIME, "heals_at": TIME,
    "at": TIME, "start_at": TIME, "hosts": LIST(_HOST), "skew_seconds": SECONDS, "targets": OBJ({"why": TEXT}),
    "faults": LIST(_output), "restored": MAP(LIST(ANY)), "changes": LIST(OBJ({"at": TIME, "up": FLAG})),
    "down_seconds": SECONDS, "watched_seconds": SECONDS, "down_at": TIME, "back_at": TIME,
})
_RUN = OBJ({
    "activity": OBJ({"name": TEXT, "type": TEXT, "ref": TEXT,
                     "provider": OBJ({"type": TEXT, "func": TEXT, "path": TEXT, "url": TEXT})}),
    "status": TEXT, "start": TIME, "end": TIME, "duration": SECONDS, "tolerance_met": OPT(FLAG),
    "exception": EITHER(TEXT, LIST(TEXT), "text or a list of lines"), "output": _output,
}, required=("activity",))
_STEADY_STATE = OBJ({"steady_state_met": OPT(FLAG), "probes": LIST(_RUN)})
_SPANS = LIST(OBJ({"from": NUMBER, "to": NUMBER}))
# a moment of the recording's clock: seconds since it started (an older chaosali wrote ISO times)
_CLOCK = EITHER(NUMBER, TIME, "seconds of the recording's clock")
_MEASURES = OBJ({
    "pods_lost": WHOLE, "api_down_seconds": SECONDS, "recovery_seconds": OPT(SECONDS), "impact": TEXT,
    "workloads": MAP(OBJ({
        "seconds_below_desired": SECONDS, "below_desired": _SPANS, "recovered_after_fault_seconds": OPT(SECONDS),
        "lost": LIST(OBJ({"pod": TEXT, "node": OPT(TEXT), "reason": OPT(TEXT), "t": NUMBER,
                          "replacement": OPT(TEXT), "replaced_after_seconds": OPT(SECONDS)})),
    })),
    "nodes": MAP(OBJ({"seconds_not_ready": SECONDS, "not_ready": _SPANS, "ready_after_fault_seconds": OPT(SECONDS),
                      "taints_seen": LIST(TEXT)})),
    "http": MAP(OBJ({"samples": WHOLE, "availability": OPT(NUMBER), "p50": OPT(SECONDS), "p95": OPT(SECONDS),
                     "p99": OPT(SECONDS), "longest_failure_streak": WHOLE, "failing_at_start": WHOLE,
                     "during_fault": OPT(OBJ({"samples": WHOLE, "p50": OPT(SECONDS), "p95": OPT(SECONDS)})),
                     "error_windows": LIST(OBJ({"from": _CLOCK, "to": OPT(_CLOCK), "reason": TEXT}))})),
})
_RECORDING = OBJ({
    "started_at": TIME, "seconds": SECONDS, "dropped": WHOLE, "errors": LIST(ANY),
    "scope": OBJ({"namespaces": LIST(TEXT), "label_selector": OPT(TEXT)}),
    "timeline": LIST(OBJ({"t": NUMBER, "kind": TEXT, "workload": TEXT})),
    "api_outages": LIST(OBJ({"from": _CLOCK, "to": OPT(_CLOCK)})),
    "fault_ends": MAP(_CLOCK),
    "alerts": LIST(OBJ({"alert": TEXT, "labels": MAP(ANY), "active_at": OPT(TIME), "pending_at": OPT(_CLOCK), "firing_at": OPT(_CLOCK),
                        "resolved_at": OPT(_CLOCK), "at_start": FLAG})),
})
_IMPACT = OBJ({"recording": _RECORDING, "measures": _MEASURES, "missing": TEXT})
# a halt, or the healing of an interrupted run
_HEALING = OBJ({"condition": TEXT, "why": TEXT, "at": TIME, "healed_at": TIME, "heal_seconds": SECONDS,
                "healed": LIST(OBJ({"healed": FLAG, "seconds": SECONDS}))})
_LEFT = LIST(OBJ({"where": TEXT, "cleanup": TEXT, "left": LIST(OBJ({"what": TEXT, "detail": TEXT}))}))
_SAFETY = OBJ({
    "conditions": LIST(OBJ({"name": TEXT})), "halt": OPT(_HEALING), "interrupt": OPT(_HEALING),
    "revert": OPT(OBJ({"left_behind": EITHER(ONE_OF("nothing"), _LEFT, '"nothing" or a list of places'),
                       "checked": LIST(ANY), "seconds": SECONDS})),
})
_PLAN = OBJ({"plan": OBJ({"activities": LIST(OBJ({
    "phase": ONE_OF("method", "rollback"), "name": TEXT,
    "hosts": LIST(OBJ({"address": TEXT, "name": TEXT}, required=("address",))),
}, required=("phase", "name")))}, required=("activities",))})
_EXTENSIONS = {IMPACT_EXTENSION: _IMPACT, SAFETY_EXTENSION: _SAFETY, PLAN_EXTENSION: _PLAN}


def _extension(value: Any, where: str, problems: _Problems) -> Any:
    if not isinstance(value, dict):
        return problems.add(where, value, "an object")
    name = value.get("name")
    shape = _EXTENSIONS.get(name) if isinstance(name, str) else None
    return shape(value, where, problems) if shape else value


_JOURNAL = OBJ({
    "experiment": OBJ({"title": TEXT, "extensions": LIST(_extension),
                       "steady-state-hypothesis": OBJ({"probes": LIST(ANY)})}),
    "status": TEXT, "deviated": FLAG, "start": TIME, "end": TIME, "duration": SECONDS,
    "run": LIST(_RUN), "rollbacks": LIST(_RUN), "extensions": LIST(_extension),
    "steady_states": OBJ({"before": OPT(_STEADY_STATE), "after": OPT(_STEADY_STATE), "during": LIST(_STEADY_STATE)}),
}, required=("experiment",))


# -- nesting ----------------------------------------------------------------------------------------------


def _deeper_than(node: Any, limit: int) -> str | None:
    """Where ``node`` nests deeper than ``limit`` levels (walked without recursion), or None."""
    stack = [(node, 0, "journal")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, (dict, list)):
            if depth >= limit:
                return where
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack += [(child, depth + 1, where if depth > 2 else f"{where}[{key}]" if isinstance(key, int)
                       else f"{where}.{key}") for key, child in items]
    return None


def _cut(node: Any, limit: int) -> Any:
    """A copy of ``node`` with what nests deeper than ``limit`` replaced by a note."""
    if not isinstance(node, (dict, list)):
        return node
    if limit <= 0:
        return f"(nested deeper than {MAX_DEPTH} levels: not shown)"
    if isinstance(node, dict):
        return {name: _cut(value, limit - 1) for name, value in node.items()}
    return [_cut(value, limit - 1) for value in node]
