"""What one run remembers between its activities and controls, forgotten when the run ends.

A rollback must act on the hosts its fault chose (a master cut silences the API that chose
them), ``restore_random_faults`` on the faults ``inject_random_faults`` drew, the controls on the
kubeconfig and the lock they took. Each keeps that here, in a section of its own.

Chaos Toolkit tells an extension nothing when a run ends unless the experiment declares one of
its controls. So the first time a run writes here, this module enrols itself as a global control
of that run: chaoslib calls every global control's ``after_experiment_control`` with the journal
(``on_journal``: what a domain adds to it) and ``cleanup_control`` when the run ends, and forgets
the enrolment when the next run loads its own. A process that runs several experiments
(chaoslib used as a library) thus starts each run with an empty memory.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
from typing import Any, Callable, Iterator

__all__ = ["section", "aside", "on_forget", "on_journal", "forget", "after_experiment_control", "cleanup_control"]

logger = logging.getLogger("chaostoolkit")

_lock = threading.Lock()
_sections: dict[str, dict[Any, Any]] = {}
_ENROLMENT = {"name": "chaosali-run-memory", "provider": {"type": "python", "module": __name__}}
_JOURNAL = "journal writers"
# run when the memory is forgotten, e.g. to remove the private kubeconfig a control fetched
_on_forget: list[Callable[[], None]] = []


def section(name: str) -> dict[Any, Any]:
    """The run's memory for one purpose (a dict the caller reads and writes)."""
    with _lock:
        if not _sections:
            _enrol()
        return _sections.setdefault(name, {})


@contextlib.contextmanager
def aside() -> Iterator[None]:
    """Whatever the block remembers is forgotten after it, and the run's memory is as it was (a
    plan resolves targets as the run would, rollbacks included, but must not choose for the run)."""
    with _lock:
        saved = {name: dict(content) for name, content in _sections.items()}
    try:
        yield
    finally:
        with _lock:
            for name, content in _sections.items():  # in place: callers may hold a section
                content.clear()
                content.update(saved.get(name, {}))


def on_forget(callback: Callable[[], None]) -> None:
    """Call ``callback`` when the run's memory is forgotten (once per registration)."""
    with _lock:
        if callback not in _on_forget:
            _on_forget.append(callback)


def forget() -> None:
    """Forget everything this run remembered."""
    with _lock:
        callbacks = list(_on_forget)
        _on_forget.clear()
        _sections.clear()
    for callback in callbacks:
        try:
            callback()
        except Exception:  # the run is over: a failed clean-up is told, not raised
            logger.warning("chaosali: clean-up at the end of the run failed", exc_info=True)


def on_journal(name: str, callback: Callable[[dict], None]) -> None:
    """Call ``callback`` with the run's journal when the run ends, before any declared control's
    end (once per ``name``)."""
    section(_JOURNAL)[name] = callback


def after_experiment_control(context: Any = None, state: Any = None, **arguments: Any) -> None:
    """chaoslib's hook at the end of a run, with the journal as ``state``."""
    if not isinstance(state, dict):
        return
    for callback in list(section(_JOURNAL).values()):
        callback(state)


def cleanup_control() -> None:
    """chaoslib's hook at the end of a run (this module enrols as a global control)."""
    forget()


def _enrol() -> None:
    try:
        from chaoslib.control import get_global_controls, set_global_controls
    except ImportError:  # a chaoslib without global controls: the process's end is the run's end
        return
    controls = get_global_controls()
    if not any(control.get("name") == _ENROLMENT["name"] for control in controls):
        set_global_controls([*controls, _ENROLMENT])


atexit.register(forget)
