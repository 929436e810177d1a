"""The run's ledger: one typed record per fault, kept on disk as the run goes.

Every domain that changes a host or a cluster goes through :func:`injecting`: the record is made
before anything is touched, says "not injected: <why>" if the injection fails (all of it, or some
targets), and carries how to heal the fault at once (``heal``, for a halt or an interrupt) and
how a later process heals it from the file (``undo``, read by ``chaosali cleanup``). When a fault's
effect ends (a restore, a timer, an uncordon), the domain says so (:func:`ended`, :func:`closed`).
Everything else is read from the records: the evidence's faults, the hosts the recorder calls
faulted, the fault ends that recovery is measured from, the heals of a halt.

On disk: ``<state>/ledger/<run>.json`` (0600, no secret), rewritten whole at each change, beside
``<run>.lock``, which the run holds locked while it lives: a ledger whose lock is free belongs to a
dead run. A run that ends with nothing open removes both.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import importlib
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from chaoslib.exceptions import ActivityFailed

from chaosali.core import extensions, memory, private

__all__ = ["Elsewhere", "same_cluster", "Fault", "attempt", "fault_action", "injecting", "stop_injecting", "into_journal", "close_all", "ended", "closed", "faults", "find", "save", "run_id", "faulted_hosts",
           "fault_ends", "healer", "HEALERS", "state_directory", "RunLedger", "ledgers"]

logger = logging.getLogger("chaostoolkit")
Action = TypeVar("Action", bound=Callable[..., Any])
_SECTION = "ledger"
_write_lock = threading.RLock()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _epoch(instant: str | None) -> float | None:
    if not isinstance(instant, str):
        return None
    try:
        return dt.datetime.fromisoformat(instant).timestamp()
    except ValueError:
        return None


@dataclass
class Fault:
    """One fault of a run, from before it is injected to when nothing of it is left.

    ``targets``: what it is on, as a journal names them; ``hosts``: the hosts it is on, address ->
    name (pods there are lost to the drill); ``started`` / ``heals_by`` / ``ended`` / ``closed``: ISO
    times (``heals_by``: when it heals by itself, None if never; ``ended``: when its effect ended;
    ``closed``: when nothing of it is left); ``not_injected``: why it, or some of its targets, did
    not go in; ``undo``: how ``chaosali cleanup`` heals it later, by a registered healer
    (``{"by": NAME, ...}``, JSON without any secret).
    """

    id: str
    kind: str
    run: str = ""
    targets: list[str] = field(default_factory=list)
    hosts: dict[str, str | None] = field(default_factory=dict)
    started: str | None = None
    heals_by: str | None = None
    ended: str | None = None
    closed: str | None = None
    not_injected: str | None = None
    undo: dict[str, Any] = field(default_factory=dict)
    # heals it at once while it lasts (safe to call when healed already); never on disk
    heal: Callable[[], Any] | None = field(default=None, repr=False, compare=False)

    @property
    def injected(self) -> bool:
        """Whether any of it went in."""
        return self.started is not None

    @property
    def state(self) -> str:
        """not injected, partly injected, injecting, in effect, ended (something may be left),
        healed by its timer (unverified) or closed."""
        if not self.injected:
            return "not injected" if self.not_injected else "injecting"
        if self.closed:
            return "closed"
        heals_by = _epoch(self.heals_by)
        if heals_by is not None and heals_by <= time.time():
            return "healed by its timer"
        return "ended" if self.ended else ("partly injected" if self.not_injected else "in effect")

    @property
    def open(self) -> bool:
        """Whether something of it may still be in place, that ``chaosali cleanup`` can heal:
        injected (or being injected), not closed, its timer not run, and with an ``undo``."""
        return bool(self.undo) and self.state in ("injecting", "in effect", "partly injected", "ended")

    def end(self) -> str | None:
        """When its effect ends: ended, else its timer; None while it has no end in sight."""
        return self.ended or self.heals_by

    def to_json(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "heal"}, "state": self.state}

    @classmethod
    def from_json(cls, data: Any) -> Fault | None:
        """A record as written by :meth:`to_json`; None if ``data`` is not one (a journal or file
        may have been edited by hand)."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("kind"), str):
            return None
        kept: dict[str, Any] = {}
        for spec in fields(cls):
            value = data.get(spec.name)
            if spec.name == "heal" or value is None:
                continue
            if spec.name in ("targets",):
                value = [str(v) for v in value] if isinstance(value, list) else None
            elif spec.name in ("hosts", "undo"):
                value = value if isinstance(value, dict) else None
            elif not isinstance(value, str):
                value = None
            if value is not None:
                kept[spec.name] = value
        return cls(**kept)

    def summary(self) -> str:
        """One line: the fault, where, and its state (with why, when not injected)."""
        where = ", ".join(self.targets) or "no target"
        state = self.state
        if self.not_injected:
            state = f"{state}: {self.not_injected}"
        elif state == "in effect" and self.heals_by:
            state = f"in effect, heals by itself at {self.heals_by}"
        elif state == "ended":
            state = f"ended at {self.ended}, not healed yet"
        return f"{self.kind} {self.id} on {where}: {state}"


# -- the run's records ------------------------------------------------------------------------


def run_id() -> str:
    """This run's id (``run-<UTC time>-<4 hex>``), made on first use."""
    section = memory.section(_SECTION)
    if "run" not in section:
        section["run"] = "run-" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:4]
        # the memory is emptied before its callbacks run: this one keeps its section
        memory.on_forget(lambda: _close_file(section))
    return str(section["run"])


def faults() -> list[Fault]:
    """This run's records, in the order they were made."""
    return list(memory.section(_SECTION).get("faults", {}).values())


def find(fault_id: str) -> Fault | None:
    return memory.section(_SECTION).get("faults", {}).get(fault_id)


@contextlib.contextmanager
def injecting(kind: str, targets: list[str] | None = None, fault_id: str | None = None) -> Iterator[Fault]:
    """Around an injection: the record, made (and written) before anything is touched; the block
    fills it in (``started``, ``hosts``, ``heals_by``, ``heal``, ``undo``). If the block raises, the
    record says "not injected" and why, and the error goes on. A halt waits for the block to end,
    and once the run halts no injection starts."""
    fault_id = fault_id or _new_id()
    with _under_way(f"{kind} {fault_id}"):
        record = _add(Fault(fault_id, kind, run_id(), list(targets or [])))
        try:
            yield record
        except BaseException as error:
            if record.not_injected is None:
                record.not_injected = _reason(error)
            raise
        finally:
            save()


@contextlib.contextmanager
def attempt(kind: str, targets: Any = None) -> Iterator[None]:
    """Around a whole fault action: if it fails and no record made meanwhile says why (its
    arguments or its targets were refused before its injection began), one is made that does."""
    before = set(memory.section(_SECTION).get("faults", {}))
    try:
        yield
    except BaseException as error:
        made = [r for key, r in memory.section(_SECTION).get("faults", {}).items() if key not in before]
        if not any(record.not_injected for record in made):
            where = [] if targets is None else [str(t) for t in (targets if isinstance(targets, list) else [targets])]
            _add(Fault(_new_id(), kind, run_id(), where, not_injected=_reason(error)))
        raise


def fault_action(kind: str) -> Callable[[Action], Action]:
    """A fault action whose every failure is on the ledger (see :func:`attempt`)."""
    def wrap(action: Action) -> Action:
        @functools.wraps(action)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            with attempt(kind):
                return action(*args, **kwargs)

        return recorded  # type: ignore[return-value]

    return wrap


# Injections under way, and whether the run is halting: a halt waits for the injections under way
# to end (an interrupt in the middle of one would leave a fault that nobody knows of) and lets no
# new one start.
_injections = threading.Condition()
_halting = {"under way": 0, "halting": False}


@contextlib.contextmanager
def _under_way(what: str) -> Iterator[None]:
    with _injections:
        if _halting["halting"]:
            raise ActivityFailed(f"the drill is halting: {what} is not injected")
        _halting["under way"] += 1
    try:
        yield
    finally:
        with _injections:
            _halting["under way"] -= 1
            _injections.notify_all()


def stop_injecting(timeout: float) -> bool:
    """Let no new injection start in this run, and wait up to ``timeout`` seconds for those under
    way to end; whether they did."""
    with _injections:
        if not _halting["halting"]:
            _halting["halting"] = True
            memory.on_forget(_resume)
        return _injections.wait_for(lambda: _halting["under way"] == 0, timeout)


def _resume() -> None:
    with _injections:
        _halting["halting"] = False


def ended(fault_id: str, at: str | None = None) -> None:
    """The fault's effect ended (at ``at``, default now; the earliest time told wins)."""
    record = find(fault_id)
    if record is None:
        return
    at = at or _now()
    record.ended = min(filter(None, [record.ended, at]), key=lambda t: _epoch(t) or 0.0)
    save()


def closed(fault_id: str, at: str | None = None) -> None:
    """Nothing of the fault is left: healed (its effect ended then, if not before)."""
    record = find(fault_id)
    if record is None or record.closed:
        return
    at = at or _now()
    ended(fault_id, at)
    record.closed = at
    save()


def _add(record: Fault) -> Fault:
    memory.section(_SECTION).setdefault("faults", {})[record.id] = record
    memory.on_journal(_SECTION, _into_journal)
    save()
    return record


def into_journal(journal: dict) -> None:
    """The records as they are now, in the journal's ``chaosali-ledger`` entry (made, or replaced)."""
    entry = {"name": extensions.LEDGER, "run": run_id(), "faults": [r.to_json() for r in faults()]}
    journal["extensions"] = [*(e for e in journal.get("extensions") or [] if e not in extensions.entries(journal, extensions.LEDGER)),
                             entry]


def close_all(at: str | None = None) -> None:
    """Close every record of the run: a verified revert found nothing of them left."""
    for record in faults():
        if record.injected and not record.closed:
            closed(record.id, at)


def _into_journal(journal: dict) -> None:
    """At the run's end: the records, in the journal as on disk; a fault that did not go in
    deviates the run."""
    into_journal(journal)
    records = faults()
    failed = [record for record in records if record.not_injected]
    if failed:
        journal["deviated"] = True
        for record in failed:
            logger.error("chaosali: %s", record.summary())


def faulted_hosts() -> dict[str, str | None]:
    """The hosts a fault of this run went in on, address -> name (None: unnamed)."""
    hosts: dict[str, str | None] = {}
    for record in faults():
        hosts.update(record.hosts)
    return hosts


def fault_ends() -> dict[str, str | None]:
    """When each injected fault of this run ends, id -> ISO time (None: no end in sight yet)."""
    return {record.id: record.end() for record in faults() if record.injected}


def _new_id() -> str:
    from chaosali.core.markers import new_fault_id

    return new_fault_id()


def _reason(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "interrupted while injecting"
    if isinstance(error, SystemExit):
        return "the run was stopped while injecting"
    text = str(error) or type(error).__name__
    return text if isinstance(error, ActivityFailed) else f"{type(error).__name__}: {text}"


# -- on disk ----------------------------------------------------------------------------------


def state_directory() -> Path:
    """Where chaosali keeps state between runs: CHAOSALI_STATE_DIR, else $XDG_STATE_HOME/chaosali,
    else ~/.local/state/chaosali."""
    given = os.environ.get("CHAOSALI_STATE_DIR")
    if given:
        return Path(given)
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "chaosali"


def _ledger_directory() -> Path:
    return state_directory() / "ledger"


def save() -> None:
    """Write the run's records to its ledger file (whole, atomically, 0600)."""
    section = memory.section(_SECTION)
    records = list(section.get("faults", {}).values())
    if not records:
        return
    with _write_lock:
        directory = _ledger_directory()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        run = run_id()
        if "lock" not in section:  # held while the run lives: a free lock means a dead run
            lock = os.open(directory / f"{run}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(lock, fcntl.LOCK_EX)
            section["lock"] = lock
        body = {"run": run, "pid": os.getpid(), "written": _now(), "faults": [r.to_json() for r in records]}
        _write_private(directory / f"{run}.json", json.dumps(body, indent=1))


def _write_private(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
    os.replace(temporary, path)


def _close_file(section: dict) -> None:
    """At the run's end: its file goes if nothing of it is open; either way its lock is let go."""
    lock = section.pop("lock", None)
    run = section.get("run")
    if run and not any(record.open for record in section.get("faults", {}).values()):
        for name in (f"{run}.json", f"{run}.lock"):
            with contextlib.suppress(FileNotFoundError):
                (_ledger_directory() / name).unlink()
    if lock is not None:
        os.close(lock)


# -- the ledgers of runs that died: ``chaosali cleanup`` ---------------------------------------

#: How a later process heals a fault from its record, by the record's ``undo["by"]``: each domain
#: registers its own when imported (``healer``), and here is where each lives, so that a process
#: that never imported it (``chaosali cleanup``, the lock's next holder) finds it.
HEALERS: dict[str, Callable[[dict, dict, dict], Any]] = {}
_HOMES = {"hosts": "chaosali.host.faults", "uncordon": "chaosali.cluster.drain",
          "kube-monkey": "chaosali.kubemonkey.actions", "kube-monkey victims": "chaosali.kubemonkey.actions"}


class Elsewhere(Exception):
    """A healer's answer for a record of another environment (other hosts, another cluster): it is
    left as it is, for a cleanup with that environment's var file."""


def same_cluster(undo_spec: dict, configuration: dict, server: str | None = None) -> None:
    """Raise :class:`Elsewhere` unless the configuration names a kubeconfig and (once connected, at
    ``server``) its cluster is the record's."""
    if not (configuration or {}).get("kubeconfig_path") or server is not None and server != undo_spec.get("server"):
        raise Elsewhere(f"in the cluster at {undo_spec.get('server')}: give its kubeconfig_path in --var-file")


def healer(name: str) -> Callable[[Callable[[dict, dict, dict], Any]], Callable[[dict, dict, dict], Any]]:
    """Register ``function(undo, configuration, secrets)`` to heal records whose undo is by ``name``."""
    def register(function: Callable[[dict, dict, dict], Any]) -> Callable[[dict, dict, dict], Any]:
        HEALERS[name] = function
        return function

    return register


def _healer_of(name: str) -> Callable[[dict, dict, dict], Any] | None:
    if name not in HEALERS and name in _HOMES:
        importlib.import_module(_HOMES[name])
    return HEALERS.get(name)


@dataclass
class RunLedger:
    """A run's ledger file, as a later process reads it."""

    run: str
    path: Path
    alive: bool
    faults: list[Fault]

    @property
    def open(self) -> list[Fault]:
        return [record for record in self.faults if record.open]

    def heal(self, configuration: dict, secrets: dict) -> list[tuple[Fault, str]]:
        """Heal every open record of this (dead) run by its healer; each with what became of it.
        The file is rewritten as records close, and removed once none is open."""
        outcomes = []
        for record in self.open:
            how = _healer_of(str(record.undo.get("by")))
            if how is None:
                outcomes.append((record, f"not healed: no healer for {record.undo.get('by')!r}; heal it by hand"))
                continue
            try:
                how(record.undo, configuration, secrets)
            except Elsewhere as where:
                outcomes.append((record, f"left: {where}"))
                continue
            except Exception as error:
                outcomes.append((record, f"not healed: {_reason(error)}"))
                continue
            record.closed = _now()
            record.ended = record.ended or record.closed
            outcomes.append((record, "healed"))
            self._write()
        return outcomes

    def _write(self) -> None:
        if not self.open:
            for path in (self.path, self.path.with_suffix(".lock")):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            return
        body = json.loads(self.path.read_text())
        body["faults"] = [record.to_json() for record in self.faults]
        _write_private(self.path, json.dumps(body, indent=1))


def ledgers() -> list[RunLedger]:
    """Every run's ledger on this machine, oldest first; ``alive``: its run still holds its lock."""
    found = []
    for path in sorted(_ledger_directory().glob("run-*.json")):
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        records = [r for r in map(Fault.from_json, body.get("faults") or []) if r is not None]
        found.append(RunLedger(path.stem, path, _held(path.with_suffix(".lock")), records))
    return found


def _held(lock_path: Path) -> bool:
    try:
        return private.held(lock_path)
    except FileNotFoundError:
        return False
