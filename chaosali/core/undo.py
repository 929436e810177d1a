"""What a run must undo: a heal for each of its faults still in effect, and checks of what it left.

A domain that injects a lasting fault tells here how to heal it at once (``in_effect``): the host
domain restores its markers by id, a drain uncordons its nodes. A stop condition that breaks, or
an interrupted run, heals them all at once (``heal_all``), whatever the rollbacks then do. A domain
that can tell what its faults of this run left behind adds a check (``add_check``); the verified
revert asks every check at the end of the run (``leftovers``). Both live in the run's memory.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from chaoslib.exceptions import ActivityFailed

from chaosali.core import memory
from chaosali.core.fanout import fan_out

__all__ = ["in_effect", "heal_all", "add_check", "leftovers", "injecting", "stop_injecting"]

# Injections under way, and whether the run is halting: a halt waits for the injections under way
# to end (an interrupt in the middle of one would leave a fault that nobody knows of) and lets no
# new one start.
_injections = threading.Condition()
_state = {"under way": 0, "halting": False}

_HEALS = "heals of the faults in effect"
_CHECKS = "checks of what the run left"


@dataclass(frozen=True)
class _Heal:
    what: str  # the fault, as a journal names it
    heal: Callable[[], Any]  # heals it at once; safe to call when it is healed already
    until: float | None  # when it heals by itself (epoch seconds), None: never


def in_effect(key: str, what: str, heal: Callable[[], Any], until: float | None = None) -> None:
    """Remember how to heal the fault ``key`` at once while it is in effect (until ``until``)."""
    memory.section(_HEALS)[key] = _Heal(what, heal, until)


def heal_all() -> list[dict]:
    """Heal, all at once, every fault of the run still in effect; each one's outcome, its time
    and what it healed. A fault healed here is not healed again by a later call."""
    heals = memory.section(_HEALS)
    now = time.time()
    due = {key: heal for key, heal in list(heals.items()) if heal.until is None or heal.until > now}
    for key in due:
        heals.pop(key, None)
    timed: dict[str, float] = {}

    def one(key: str) -> Any:
        began = time.monotonic()
        try:
            return due[key].heal()
        finally:
            timed[key] = round(time.monotonic() - began, 3)

    results, errors = fan_out(list(due), one)
    return [{"fault": due[key].what, "healed": key in results, "seconds": timed.get(key),
             **({"result": results[key]} if key in results else {"error": errors.get(key)})} for key in due]


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


@contextmanager
def injecting(what: str) -> Iterator[None]:
    """Around an injection: a halt waits for it to end; once the run halts, none starts."""
    with _injections:
        if _state["halting"]:
            raise ActivityFailed(f"the drill is halting: {what} is not injected")
        _state["under way"] += 1
    try:
        yield
    finally:
        with _injections:
            _state["under way"] -= 1
            _injections.notify_all()


def stop_injecting(timeout: float) -> bool:
    """Let no new injection start in this run, and wait up to ``timeout`` seconds for those under
    way to end; whether they did."""
    with _injections:
        if not _state["halting"]:
            _state["halting"] = True
            memory.on_forget(_resume)
        return _injections.wait_for(lambda: _state["under way"] == 0, timeout)


def _resume() -> None:
    with _injections:
        _state["halting"] = False
