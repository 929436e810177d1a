"""Plan vs run: the hosts ``chaosali plan`` resolved for each activity, beside the hosts the run's
journal says the activity really acted on (targets may move between the plan and the run).

The plan is a file of ``chaosali plan --format json``, or the one the ``plan`` control put in the
journal (extension ``chaosali-plan``). Only the plan and the journal are read, as the report reads
a journal: parts of the wrong shape left out and said so, secrets masked, text made printable.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaosali.core.errors import InvalidArgument
from chaosali.core.tables import md, md_table, text_table
from chaosali.report.journal import PLAN_EXTENSION, read_journal
from chaosali.report.outputs import printable
from chaosali.report.redact import redact

__all__ = ["read_plan", "plan_in", "compared", "versus", "render_versus"]

_LABELLED = re.compile(r"^(?P<name>.*) \((?P<address>[^()]+)\)$")  # str(Host): "worker1 (10.0.0.5)"


def read_plan(path: Path) -> dict:
    """A plan file, or an error naming the file and what it should be."""
    try:
        plan = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidArgument(f"{path}: cannot read the plan: {error}") from None
    except RecursionError:  # the JSON parser's own limit
        raise InvalidArgument(f"{path}: cannot read the plan: nested too deep") from None
    if not isinstance(plan, dict) or not isinstance(plan.get("activities"), list):
        raise InvalidArgument(f"{path} is not a plan: write one with `chaosali plan EXPERIMENT --format json -o {path}`")
    return plan


def compared(journal: Any, plan: dict | None = None) -> tuple[list[dict], list[str]] | None:
    """Plan vs run of one journal, with ``plan`` (a plan file's) or else the journal's own, if it
    has one; and a line for each part of the plan left out for its shape. Both are read as the
    report reads a journal, the plan as if the journal held it: checked, cut, masked."""
    if not isinstance(journal, dict):
        return None
    if plan is not None:
        journal = {**journal, "extensions": [{"name": PLAN_EXTENSION, "plan": plan}, *_objects(journal, "extensions")]}
    reading = read_journal({"experiment": {}, **journal})
    masked = redact({"journal": reading.journal, "problems": reading.problems})
    found = plan_in(masked["journal"])
    if found is None:
        return None
    where = re.compile(r"^journal\.extensions\[\d+\]\.plan")
    return versus(found, masked["journal"]), [where.sub("plan", line) for line in masked["problems"] if where.match(line)]


def plan_in(journal: Any) -> dict | None:
    """The plan the ``plan`` control made before this run, if it did."""
    plans = [e.get("plan") for e in _objects(journal, "extensions") if e.get("name") == PLAN_EXTENSION]
    return next((plan for plan in plans if isinstance(plan, dict) and isinstance(plan.get("activities"), list)), None)


def _objects(journal: Any, key: str) -> list[dict]:
    """The objects of a journal's list ``key``; whatever else a damaged journal holds there is left out."""
    listed = journal.get(key) if isinstance(journal, dict) else None
    return [item for item in listed if isinstance(item, dict)] if isinstance(listed, list) else []


def versus(plan: dict, journal: dict) -> list[dict]:
    """Per planned activity with targets: the hosts planned, the hosts hit, and whether they agree."""
    ran = {"method": _objects(journal, "run"), "rollback": _objects(journal, "rollbacks")}
    seen: Counter = Counter()
    rows = []
    for activity in plan["activities"]:
        if "hosts" not in activity and "error" not in activity:
            continue
        phase, name = activity["phase"], activity["name"]
        seen[phase, name] += 1
        matching = [r for r in ran[phase] if isinstance(r.get("activity"), dict) and r["activity"].get("name") == name]
        record = matching[seen[phase, name] - 1] if len(matching) >= seen[phase, name] else None
        planned = sorted(h["address"] for h in activity.get("hosts") or [])
        hit = _hit(record.get("output")) if record else None
        rows.append({"phase": phase, "activity": name, "planned": planned, "hit": hit,
                     "status": record.get("status") if record else "not run",
                     "same": hit is not None and _same(planned, hit, activity)})
    return rows


def _hit(output: Any) -> list[str] | None:
    """The hosts (addresses; node names for a drain) an activity's output says it acted on."""
    if not isinstance(output, dict):
        return None
    if isinstance(output.get("hosts"), list):
        return _addresses(output["hosts"])
    if isinstance(output.get("faults"), list):  # random chaos
        return sorted(set(_addresses([h for f in _objects(output, "faults") for h in f.get("hosts") or []])))
    if isinstance(output.get("restored"), dict):
        return sorted(m["address"] if (m := _LABELLED.match(k)) else k for k in output["restored"])
    if isinstance(output.get("nodes"), list):  # a drain names nodes
        return sorted(str(node) for node in output["nodes"])
    return None


def _addresses(hosts: list) -> list[str]:
    return sorted(str(h["address"]) for h in hosts if isinstance(h, dict) and "address" in h)


def _same(planned: list[str], hit: list[str], activity: dict) -> bool:
    names = sorted(h["name"] for h in activity.get("hosts") or [] if h.get("name"))
    return hit in (planned, names)


def render_versus(rows: list[dict], fmt: str, left_out: Sequence[str] = ()) -> str:
    """The comparison as a text or Markdown section, safe for a terminal; then the parts of the
    plan left out for their shape."""
    header = ["PHASE", "ACTIVITY", "PLANNED", "HIT", "AGREE"]
    table = [[r["phase"], r["activity"] or "", ", ".join(r["planned"]) or "-",
              r["status"] if r["hit"] is None else ", ".join(r["hit"]) or "-", "yes" if r["same"] else "NO"]
             for r in rows]
    if fmt == "markdown":
        lines = ["## Plan vs run", "", *md_table(header, table), *(["", *(f"- unreadable: {md(line)}" for line in left_out)]
                                                                    if left_out else [])]
    else:
        lines = ["PLAN VS RUN", *("  " + line for line in text_table(header, table)),
                 *(f"  unreadable: {line}" for line in left_out), ""]
    return printable("\n".join(lines))
