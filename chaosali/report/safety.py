"""The safety control's part of a report (``chaosali.safety.controls``): a halt (which stop
condition broke, when, the value, what was healed and how fast), an interrupted run's healing, and
the verified revert (what the run left behind, and the command that removes it).

A halted run fails the check "no stop condition broke"; a run that left something fails "left
behind: nothing". Both weigh as critical checks in the resilience score. The journal's part is
read defensively: a part of another type counts as absent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from chaosali.core import extensions

__all__ = ["SAFETY_EXTENSION", "safety_checks", "halt_sentence", "revert_sentence", "halt_span", "safety_figures"]

SAFETY_EXTENSION = extensions.SAFETY
HALT, REVERT = "halt", "revert"


def _entry(journal: dict[str, Any]) -> dict[str, Any]:
    found = [e for e in journal.get("extensions") or [] if isinstance(e, dict) and e.get("name") == SAFETY_EXTENSION]
    return found[-1] if found else {}


def _part(journal: dict[str, Any], name: str) -> dict[str, Any] | None:
    part = _entry(journal).get(name)
    return part if isinstance(part, dict) else None


def safety_checks(journal: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(kind, name, met) of the safety checks the journal allows: the halt when conditions were
    watched, the revert when it was verified."""
    entry = _entry(journal)
    checks = []
    if entry.get("conditions"):
        checks.append((HALT, "no stop condition broke", _part(journal, "halt") is None))
    revert = _part(journal, "revert")
    if revert is not None:
        checks.append((REVERT, "left behind: nothing", revert.get("left_behind") == "nothing"))
    return checks


def halt_sentence(journal: dict[str, Any]) -> str:
    halt = _part(journal, "halt")
    if halt is None:
        conditions = [str(c.get("name")) for c in _entry(journal).get("conditions") or [] if isinstance(c, dict)]
        return f"none of {len(conditions)} stop condition(s) broke: {', '.join(conditions)}"
    return (f"HALTED: stop condition {halt.get('condition')!r} {halt.get('why')} at {_offset(journal, halt.get('at'))}, "
            f"value {halt.get('value')!r}; {_healed(halt)}; the run was interrupted")


def _healed(part: dict[str, Any]) -> str:
    healed = [h for h in part.get("healed") or [] if isinstance(h, dict)]
    failed = [h for h in healed if not h.get("healed")]
    text = (f"healed {len(healed) - len(failed)} fault(s) in {part.get('heal_seconds')} s: "
            + ", ".join(str(h.get("fault")) for h in healed)) if healed else "no fault was in effect"
    return text + "".join(f"; NOT healed {h.get('fault')}: {h.get('error')}" for h in failed)


def revert_sentence(journal: dict[str, Any]) -> str:
    revert = _part(journal, "revert") or {}
    left = revert.get("left_behind")
    checked = revert.get("checked") or []
    if left == "nothing":
        return f"left behind: nothing ({len(checked)} place(s) checked in {revert.get('seconds')} s)"
    places = [p for p in left or [] if isinstance(p, dict)]
    return "LEFT BEHIND: " + "; ".join(
        f"{p.get('where')}: " + ", ".join(f"{i.get('what')} {i.get('detail')}" for i in p.get("left") or [] if isinstance(i, dict))
        + (f" (remove it with: {p['cleanup']})" if p.get("cleanup") else "") for p in places)


def halt_span(journal: dict[str, Any]) -> tuple[dt.datetime, dt.datetime, str] | None:
    """From the breaking check to every fault healed, with its label, for a timeline."""
    halt = _part(journal, "halt") or _part(journal, "interrupt")
    if halt is None:
        return None
    start, stop = _time(halt.get("at")), _time(halt.get("healed_at"))
    if start is None:
        return None
    label = (f"halted by {halt['condition']!r}" if "condition" in halt else "interrupted") + f" · {_healed(halt)}"
    return start, stop or start + dt.timedelta(seconds=float(halt.get("heal_seconds") or 0)), label


def safety_figures(journal: dict[str, Any]) -> dict[str, Any] | None:
    """The safety part as the JSON report gives it."""
    entry = _entry(journal)
    if not entry:
        return None
    return {"conditions": entry.get("conditions"), "halt": entry.get("halt"), "interrupt": entry.get("interrupt"),
            "revert": entry.get("revert")}


def _time(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _offset(journal: dict[str, Any], value: Any) -> str:
    moment, start = _time(value), _time(journal.get("start"))
    if moment is None:
        return "an unknown time"
    if start is None:
        return moment.isoformat()
    start = start if start.tzinfo else start.replace(tzinfo=dt.timezone.utc)
    return f"+{(moment - start).total_seconds():.1f} s"
