"""What a run must undo: a heal for each of its faults still in effect, and checks of what it left.

Each fault's record in the run's ledger carries how to heal it at once (the host domain restores
its markers by id, a drain uncordons its nodes). A stop condition that breaks, or an interrupted
run, heals them all at once (``heal_all``), whatever the rollbacks then do. A domain that can tell
what its faults of this run left behind adds a check (``add_check``); the verified revert asks
every check at the end of the run (``leftovers``).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Callable

from chaosali.core import ledger, memory
from chaosali.core.fanout import fan_out

__all__ = ["heal_all", "add_check", "leftovers"]

_CHECKS = "checks of what the run left"


def heal_all() -> list[dict]:
    """Heal, all at once, every fault of the run still in effect; each one's outcome, its time
    and what it healed. A fault healed here is not healed again by a later call."""
    now = time.time()
    due = {record.id: record for record in ledger.faults()
           if record.heal is not None and not record.closed and _before(record.heals_by, now)}
    heals = {key: record.heal for key, record in due.items() if record.heal is not None}
    for record in due.values():
        record.heal = None  # healed once: a later call does not try again
    timed: dict[str, float] = {}

    def one(key: str) -> Any:
        began = time.monotonic()
        try:
            return heals[key]()
        finally:
            timed[key] = round(time.monotonic() - began, 3)

    keys: list[Any] = list(due)  # fault ids: the fan-out names its endpoints by them
    results, errors = fan_out(keys, one)
    for key in results:
        ledger.closed(key)
    return [{"fault": f"{due[key].kind} {key} on {', '.join(due[key].targets)}", "healed": key in results,
             "seconds": timed.get(key),
             **({"result": results[key]} if key in results else {"error": errors.get(key)})} for key in due]


def _before(heals_by: str | None, now: float) -> bool:
    """Whether a fault's timer (a second of slack for the host's own) is still to run."""
    if heals_by is None:
        return True
    return dt.datetime.fromisoformat(heals_by).timestamp() + 1 > now


def add_check(name: str, check: Callable[[], list[dict]]) -> None:
    """Ask ``check`` at the end of the run what the run left behind: one entry per place checked
    (a host, a node), ``{"where", "left": [{"what", "detail"}], "cleanup": the command that
    removes it}``; ``left`` is empty where nothing was left."""
    memory.section(_CHECKS)[name] = check


def leftovers() -> tuple[list[dict], dict[str, str]]:
    """Every check's findings, the checks run in parallel; and the checks that could not tell."""
    checks = dict(memory.section(_CHECKS))
    results, errors = fan_out(list(checks), lambda name: checks[name](), quiet=True)
    return [found for name in checks for found in results.get(name, [])], errors
