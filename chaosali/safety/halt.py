"""Halting a run: watch the stop conditions while the method runs; when one breaks, heal every
fault of the run at once, then interrupt the run.

Each condition is checked in a thread of its own (a probe may block), from the method's start to
its end. The first that breaks halts the run once: the heals the run's memory knows run all at
once, on every host (``chaosali.core.undo``), and only then is the run interrupted, as
``chaoslib.exit.exit_gracefully`` does (chaostoolkit's SIGUSR1: the rollbacks are kept).
"""

from __future__ import annotations

import _thread
import datetime as dt
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from chaoslib.exit import exit_gracefully
from chaoslib.types import Configuration, Secrets

from chaosali.core import ledger, undo
from chaosali.safety.conditions import Condition

__all__ = ["Watch"]

logger = logging.getLogger("chaostoolkit")

_SETTLE = 10.0  # seconds a halt waits for injections under way (an SSH session each) before it heals


@dataclass
class Watch:
    """The conditions of one run, watched from :meth:`start` to :meth:`stop`; ``halt`` says why
    and how the run was halted, once it was."""

    conditions: list[Condition]
    configuration: Configuration = None
    secrets: Secrets = None
    halt: dict[str, Any] | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for condition in self.conditions:
            thread = threading.Thread(target=self._watch, args=(condition,), daemon=True,
                                      name=f"chaosali-stop-{condition.name}")
            self._threads.append(thread)
            thread.start()
        logger.info("chaosali: watching %d stop condition(s): %s", len(self.conditions),
                    "; ".join(condition.describe() for condition in self.conditions))

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5)

    def _watch(self, condition: Condition) -> None:
        failed: list[str] = []
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                holds, value = condition.check(self.configuration, self.secrets)
            except Exception as error:  # the condition's own check: a probe raising, no recording
                failed.append(f"{type(error).__name__}: {error}")
                logger.warning("chaosali: stop condition %r could not be checked (%d in a row): %s",
                               condition.name, len(failed), failed[-1])
                if len(failed) >= condition.failures and condition.fail_closed:
                    self._break(condition, None, f"its check failed {len(failed)} times in a row (fail closed): "
                                                 f"{failed[-1]}")
            else:
                failed.clear()
                if not holds:
                    self._break(condition, value, "broke")
            self._stopping.wait(max(0.0, condition.interval - (time.monotonic() - began)))

    def _break(self, condition: Condition, value: Any, why: str) -> None:
        """Halt the run once: heal everything, then interrupt."""
        with self._lock:
            if self.halt is not None or self._stopping.is_set():
                return
            self.halt = {"condition": condition.name, "kind": condition.kind, "declared": condition.spec,
                         "at": _now(), "value": value, "why": why}
        self._stopping.set()
        logger.warning("chaosali: stop condition %s %s (value %s): halting the drill, healing every fault now",
                       condition.describe(), why, value)
        began = time.monotonic()
        if not ledger.stop_injecting(_SETTLE):
            logger.warning("chaosali: an injection still runs after %g s: healing what is known now", _SETTLE)
        healed = undo.heal_all()
        self.halt.update(healed=healed, heal_seconds=round(time.monotonic() - began, 3), healed_at=_now())
        logger.warning("chaosali: healed %d fault(s) in %.2f s; interrupting the run", len(healed),
                       self.halt["heal_seconds"])
        _interrupt()


def _interrupt() -> None:
    """Stop the run as chaostoolkit's SIGUSR1 does (rollbacks kept); without chaoslib's handler
    (chaoslib used as a library), as Ctrl-C does."""
    handler = signal.getsignal(signal.SIGUSR1) if hasattr(signal, "SIGUSR1") else None
    if getattr(handler, "__module__", None) == "chaoslib.exit":
        exit_gracefully()
    else:
        _thread.interrupt_main()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()
