"""The ``safety`` control: stop conditions that halt and heal a drill, and a verified revert.

::

    {"name": "safety", "provider": {"type": "python", "module": "chaosali.safety.controls",
      "arguments": {"conditions": [{"name": "web stays up", "limit": "min_availability", "budget": 90}]}}}

While the method runs, each stop condition (see :mod:`chaosali.safety.conditions`) is checked in
the background. The first that breaks halts the drill: every fault of the run still in effect is
healed at once on every host (the run's memory knows how: restores by fault id, drains
uncordoned), then the run is interrupted; the rollbacks still run (chaostoolkit skips them after
an interrupt under its default strategy: here they are kept), and ``chaos run`` exits non-zero.
An interrupted run (Ctrl-C, SIGTERM, another control) has its faults healed at once too, whatever
the rollbacks then do.

At the end of the run (``verify_revert``, the default), every host and cluster object the run
touched is checked for anything the run left: "left behind: nothing", or the list, and the run
deviates. A run whose steady state before the method was not met never started its drill:
chaoslib calls it "completed"; here it fails (``chaos run`` exits 1), saying which probe was not
met. The journal keeps it all under its ``extensions`` as ``{"name": "chaosali-safety", ...}``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from chaoslib.exceptions import InvalidControl
from chaoslib.run import RunEventHandler
from chaoslib.types import Configuration, Control, Experiment, Journal, Secrets, Settings

from chaosali.core import args, extensions, ledger, memory, undo
from chaosali.core.controls import check_arguments, fail_closed
from chaosali.core.errors import InvalidArgument
from chaosali.safety import revert
from chaosali.safety.conditions import conditions as read_conditions
from chaosali.safety.halt import Watch

__all__ = ["validate_control", "configure_control", "before_experiment_control", "before_method_control",
           "after_method_control", "after_experiment_control", "cleanup_control", "EXTENSION"]

logger = logging.getLogger("chaostoolkit")

EXTENSION = extensions.SAFETY
_MEMORY = "safety"
_IMPACT_CONTROL = "chaosali.impact.controls"
# the journal's status while the rollbacks of a halted run play: chaoslib skips them for "interrupted"
_HALTED = "halted"


def validate_control(control: Control) -> None:
    """Check the control's arguments and every stop condition when the experiment is validated."""
    check_arguments(control, before_experiment_control)
    arguments = (control.get("provider") or {}).get("arguments") or {}
    try:
        read_conditions(arguments.get("conditions"))
        args.boolean(arguments.get("verify_revert", True), "verify_revert")
    except InvalidArgument as error:
        raise InvalidControl(f"control {control.get('name')!r}: {error}") from None


def configure_control(event_registry: Any = None, **arguments: Any) -> None:
    """Follow the run's events: an interrupted run is healed at once, a halted one keeps its rollbacks."""
    if event_registry is not None:
        event_registry.register(_RunEvents())


@fail_closed("safety")
def before_experiment_control(
    context: Experiment,
    conditions: list = None,
    verify_revert: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
    settings: Settings = None,
) -> None:
    """
    Get ready to watch the stop `conditions` while the method runs (a list:
    `{"name", "limit", "budget"}` for a limit of impact_within on the
    recording so far, which needs the impact control; `{"name", "probe"}`
    for a Chaos Toolkit probe with its tolerance; each with an optional
    `interval` in seconds, `failures` of its own check in a row that stop
    the drill, and `fail_closed`). The first condition that breaks heals
    every fault of the run at once, then interrupts the run, keeping its
    rollbacks. With `verify_revert` (default true), every host and cluster
    object the run touched is checked at its end for anything left.
    """
    watched = read_conditions(conditions, configuration or {}, secrets, _declared(context, settings))
    if any(c.kind == "limit" for c in watched) and not _declares(context, _IMPACT_CONTROL):
        raise InvalidArgument(f"a limit stop condition judges the impact recording: declare the control {_IMPACT_CONTROL}")
    memory.section(_MEMORY).update(watch=Watch(watched, configuration, secrets),
                                   verify=args.boolean(verify_revert, "verify_revert"))


def before_method_control(context: Experiment, **arguments: Any) -> None:
    """Start watching the stop conditions."""
    watch: Watch | None = memory.section(_MEMORY).get("watch")
    if watch is not None and watch.conditions:
        watch.start()


def after_method_control(context: Experiment, **arguments: Any) -> None:
    """Stop watching: the conditions hold while the method runs."""
    _stop_watching()


def after_experiment_control(context: Experiment, state: Journal = None, **arguments: Any) -> None:
    """Check what the run left (after the rollbacks); put the halt and the check in the journal."""
    _stop_watching()
    section = memory.section(_MEMORY)
    if "watch" not in section or state is None:
        return
    if state.get("status") == _HALTED:  # the rollbacks were not played: no event set it back
        state["status"] = "interrupted"
    entry: dict[str, Any] = {"name": EXTENSION, "conditions": [c.spec for c in section["watch"].conditions],
                             "halt": section["watch"].halt, "interrupt": section.get("interrupt")}
    unmet = _not_started(state)
    if unmet is not None:  # chaoslib calls such a run "completed": a drill that never ran is no pass
        state["status"] = "failed"
        entry["not_started"] = unmet
        logger.error("chaosali: %s", unmet)
    if section["verify"]:
        entry["revert"] = revert.verify()
        if entry["revert"]["left_behind"] != revert.NOTHING:
            state["deviated"] = True
        else:  # nothing of the run's faults is left: their records close, here and on disk
            ledger.close_all()
            if extensions.entries(state, extensions.LEDGER):
                ledger.into_journal(state)
    state["extensions"] = [*(state.get("extensions") or []), entry]


def _not_started(journal: Journal) -> str | None:
    """Why the drill never started (its steady state before the method was not met), or None."""
    before = (journal.get("steady_states") or {}).get("before")
    if not isinstance(before, dict) or before.get("steady_state_met") is not False:
        return None
    unmet = [str((probe.get("activity") or {}).get("name")) for probe in before.get("probes") or []
             if isinstance(probe, dict) and (probe.get("tolerance_met") is False or probe.get("status") == "failed")]
    return (f"the drill never started: the steady state before the method was not met ({', '.join(unmet) or 'a probe'}); "
            "no fault was injected, and the run fails")


def cleanup_control() -> None:
    """Stop watching if the run ended without its after-method control."""
    _stop_watching()


def _stop_watching() -> None:
    watch: Watch | None = memory.section(_MEMORY).get("watch")
    if watch is not None:
        watch.stop()


def _declared(experiment: Experiment, settings: Settings) -> Any:
    """The conditions as the experiment (or the settings) declare them, before chaoslib filled in
    their placeholders (secrets included): what the journal keeps."""
    declarations = [*((experiment or {}).get("controls") or []), *(((settings or {}).get("controls") or {}).values())]
    found = [((control.get("provider") or {}).get("arguments") or {}).get("conditions") for control in declarations
             if isinstance(control, dict) and (control.get("provider") or {}).get("module") == __name__]
    return found[0] if len(found) == 1 else None


def _declares(experiment: Experiment, module: str) -> bool:
    return any((control.get("provider") or {}).get("module") == module for control in (experiment or {}).get("controls") or [])


class _RunEvents(RunEventHandler):
    """chaoslib's run events, as they reach a control: the journal, the rollback strategy, and the
    moments an interrupt reaches the run and its rollbacks end."""

    def __init__(self) -> None:
        self.journal: Journal | None = None
        self.strategy = "default"

    def running(self, experiment: Experiment, journal: Journal, configuration: Configuration, secrets: Secrets,
                schedule: Any, settings: Any) -> None:
        self.journal = journal
        self.strategy = (((settings or {}).get("runtime") or {}).get("rollbacks") or {}).get("strategy", "default")

    def interrupted(self, experiment: Experiment, journal: Journal) -> None:
        self._heal("the run was interrupted")

    def signal_exit(self) -> None:
        self._heal("the run received an exit signal (Ctrl-C, SIGTERM or SIGUSR)")

    def rollbacks_completed(self, experiment: Experiment, journal: Journal) -> None:
        if journal.get("status") == _HALTED:
            journal["status"] = "interrupted"

    def _heal(self, why: str) -> None:
        """Heal at once what the run left in effect; a halted run keeps its rollbacks."""
        section = memory.section(_MEMORY)
        watch: Watch | None = section.get("watch")
        if watch is None:
            return
        watch.stop()
        began = time.monotonic()
        healed = undo.heal_all()
        if watch.halt is not None:  # our own interrupt: the halt healed already, this is what came since
            watch.halt.setdefault("healed", []).extend(healed)
            if self.strategy == "default" and self.journal is not None and self.journal.get("status") == "interrupted":
                self.journal["status"] = _HALTED  # chaoslib plays the rollbacks then; they set it back
            return
        seconds = round(time.monotonic() - began, 3)
        section["interrupt"] = {"why": why, "at": dt.datetime.now(dt.timezone.utc).isoformat(),
                                "healed": healed, "heal_seconds": seconds}
        logger.warning("chaosali: %s: healed %d fault(s) of the run in %.2f s", why, len(healed), seconds)
