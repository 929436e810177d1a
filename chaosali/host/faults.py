"""Faults that heal themselves: markers, dead-man timers and restore scripts on the host.

Every fault lives on its host as ``<MARKER_ROOT>/<id>/``: ``kind`` (what it is, so that restores
can filter), ``env`` (what it resolved on the host), ``apply.sh``, ``restore.sh`` (the undo
commands, each allowed to fail, so restoring twice is harmless) and ``timer.pid`` (the detached
dead-man timer that runs ``restore.sh`` after the fault's duration, armed *before* the fault takes
effect). ``/run`` is a tmpfs on real hosts: a reboot clears markers with the state they describe.

The shell around the commands is packaged as files (``sh/*.sh``); Python gives them their values
as quoted assignments first and appends the commands generated for the arguments.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import re
import shlex
import time
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Iterable

from chaoslib.exceptions import ActivityFailed

from chaosali.core import ledger, memory, undo
from chaosali.core.fanout import fan_out
from chaosali.core.markers import FAULT_ID_PREFIX, MARKER_ROOT, new_fault_id
from chaosali.host.evidence import summarise_loads
from chaosali.host.ssh import Host, NothingRan, SSHSettings, parse_hosts, run_script

__all__ = ["FaultScript", "host_script", "inject", "restore", "restore_script_for", "run_everywhere", "left_behind"]

logger = logging.getLogger("chaostoolkit")


def host_script(name: str, values: dict[str, str], lines: Iterable[str] = ()) -> str:
    """The packaged script ``sh/<name>`` for one use: ``values`` first, as quoted shell
    assignments, then the script, then ``lines`` (the commands generated for the arguments)."""
    assignments = [f"{variable}={shlex.quote(value)}" for variable, value in values.items()]
    return "\n".join([*assignments, _skeleton(name), *lines]) + "\n"


@functools.cache
def _skeleton(name: str) -> str:
    return (files(__package__) / "sh" / name).read_text().rstrip("\n")


@dataclass
class FaultScript:
    """A fault as shell commands: ``apply`` injects it, ``undo`` heals it, ``report`` prints what
    took effect (e.g. the exact rules) into the activity's output.

    ``detach`` runs ``apply`` outside the SSH session, for faults that cut the session itself; a
    detached fault cannot report, its output shows the commands it runs. Commands may use ``$d``,
    the marker directory, and add ``NAME='value'`` lines to ``$d/env`` for the undo and the report:
    restore.sh sources that file, so a value found on the host is checked there and written
    quoted, never re-parsed as shell (see network.tc_fault).
    """

    kind: str
    duration: float
    apply: list[str]
    undo: list[str]
    report: list[str] = field(default_factory=list)
    detach: bool = False
    id: str = field(default_factory=new_fault_id)
    # a packaged script (sh/) that the dead-man timer runs while the fault lasts, to sample its
    # effect on the host into ``$d/samples``; a restore prints the samples (``restore``)
    sampler: str | None = None
    # a program of this package (a file name in chaosali/host/) that the fault runs on the host:
    # written into its marker directory under that name before ``apply`` runs
    program: str | None = None
    # when the fault takes effect, in epoch seconds (None: at once): faults that start together
    at: float | None = None
    # how many of ``apply``'s first commands only prepare the fault (chains, lookups): faults that
    # start together run them before the instant, so that little is left to do at it
    prepared: int = 0

    @property
    def directory(self) -> str:
        return f"{MARKER_ROOT}/{self.id}"

    def apply_script(self) -> str:
        """The marker's ``apply.sh``: with an instant ``at``, it waits for it once prepared."""
        at = "" if self.at is None else f"{self.at:.6f}"
        wait = ('[ -z "$CHAOSALI_AT" ] || sleep "$(date +%s.%N | '
                'awk -v at="$CHAOSALI_AT" \'{ w = at - $1; print (w > 0 ? w : 0) }\')"')
        lines = [*self.apply[:self.prepared], wait, *self.apply[self.prepared:]]
        return host_script("apply.sh", {"d": self.directory, "CHAOSALI_AT": at}, lines)

    def restore_script(self) -> str:
        """The marker's ``restore.sh``."""
        return host_script("fault-restore.sh", {"d": self.directory}, self.undo)

    def render(self) -> str:
        """The one SSH command that injects the fault."""
        values = {
            "d": self.directory,
            "CHAOSALI_KIND": self.kind,
            "CHAOSALI_DURATION": f"{self.duration:g}",
            "CHAOSALI_DETACH": "yes" if self.detach else "no",
            "CHAOSALI_RESTORE": self.restore_script(),
            "CHAOSALI_APPLY": self.apply_script(),
            "CHAOSALI_SAMPLE": host_script(self.sampler, {"d": self.directory}) if self.sampler else "",
            "CHAOSALI_PROGRAM": self.program or "",
            "CHAOSALI_PROGRAM_TEXT": (files(__package__) / self.program).read_text() if self.program else "",
            "CHAOSALI_AT": "" if self.at is None else f"{self.at:.6f}",
        }
        # after the report, what the fault resolved here: for the check that its restore left nothing
        return host_script("fault.sh", values, [] if self.detach else [*self.report, f"sed 's/^/{_ENV}/' \"$d/env\""])


def inject(hosts: list[Host], fault: FaultScript, settings: SSHSettings, all_or_nothing: bool = True) -> dict:
    """Inject ``fault`` on every host in parallel; return the activity output.

    All-or-nothing by default: if one host fails, the hosts that took the fault are restored
    and the activity fails, naming each failed host and why.
    """
    script = fault.render()
    with ledger.injecting(fault.kind, list(map(str, hosts)), fault.id) as record:
        # known to the run before it reaches any host: an interrupt on the way heals it too
        _remember(record, fault, {host: {} for host in hosts}, settings)
        started = dt.datetime.now(dt.timezone.utc)
        unreached: set[Host] = set()

        def attempt(host: Host) -> str:
            try:
                return run_script(host, script, settings)
            except NothingRan:
                unreached.add(host)
                raise

        results, errors = fan_out(hosts, attempt)
        if errors and all_or_nothing and results:
            restore_script = restore_script_for([fault.id], "")
            _, undo_errors = fan_out(list(results), lambda host: run_script(host, restore_script, settings))
            for host, reason in undo_errors.items():
                errors[host] = (f"took the fault but could not be restored ({reason}); it heals by itself "
                                f"within {fault.duration:g} s")
        # a host that ran nothing of it holds nothing of it: the verified revert need not (and, with
        # the credentials that failed, could not) look there
        _remember(record, fault, {host: _resolved(results.get(host, "")) for host in hosts if host not in unreached},
                  settings)
        failures = "; ".join(f"{host}: {reason}" for host, reason in errors.items())
        if errors and (all_or_nothing or not results):
            raise ActivityFailed(f"{fault.kind} {fault.id} failed on {len(errors)} of {len(hosts)} host(s): {failures}"
                                 + ("; the others were restored" if all_or_nothing and results else ""))
        if errors:
            record.not_injected = f"not on {len(errors)} of {len(hosts)} host(s): {failures}"
        record.started, record.targets = started.isoformat(), list(map(str, results))
        record.hosts = {host.address: host.name for host in results}
    output: dict[str, Any] = {
        "fault_id": fault.id,
        "kind": fault.kind,
        "duration": fault.duration,
        "started_at": started.isoformat(),
        "heals_at": record.heals_by,
        "commands": fault.apply,
        "hosts": [
            {"host": str(host), "address": host.address, "ok": True, **_effect(results[host])}
            for host in hosts
            if host in results
        ]
        + [{"host": str(host), "address": host.address, "ok": False, "error": errors[host]} for host in errors],
    }
    if fault.at is not None:
        output.update(_together(fault.at, output["hosts"]))
    logger.info("chaosali: %s %s on %s for %g s", fault.kind, fault.id, ", ".join(map(str, results)), fault.duration)
    return output


_EFFECTIVE = "chaosali-effective-at "  # fault.sh's line for the instant a fault took effect
_ENV = "chaosali-env "  # fault.sh's lines for what the fault resolved on the host (its env file)
_ASSIGNMENT = re.compile(r"([A-Z]+)='([^']*)'")


def _effect(out: str) -> dict:
    """A host's report, and the instant its fault took effect when it started together with others."""
    lines = [line for line in out.splitlines() if not line.startswith(_ENV)]
    instants = [float(line[len(_EFFECTIVE):]) for line in lines if line.startswith(_EFFECTIVE)]
    report = {"report": [line for line in lines if not line.startswith(_EFFECTIVE)]}
    return {**report, "effective_at": _iso(instants[0])} if instants else report


def _resolved(out: str) -> dict[str, str]:
    """What a fault resolved on its host (the interface, the file, the processes), from fault.sh's lines."""
    found = (_ASSIGNMENT.fullmatch(line[len(_ENV):]) for line in out.splitlines() if line.startswith(_ENV))
    return {match[1]: match[2] for match in found if match}


# this run's faults (id -> _Injected), for the check that their restores left nothing
_INJECTED = "host faults injected"


@dataclass(frozen=True)
class _Injected:
    kind: str
    resolved: dict[Host, dict[str, str]]  # the hosts that took the fault, and what it resolved on each
    settings: SSHSettings


def _remember(record: ledger.Fault, fault: FaultScript, resolved: dict[Host, dict[str, str]],
              settings: SSHSettings) -> None:
    """Keep the fault in its record and the run's memory: how to heal it at once while it lasts
    (restoring it where it never took is harmless), how ``chaosali cleanup`` heals it later, and
    where to look for what it may leave."""
    hosts = list(resolved)
    memory.section(_INJECTED)[fault.id] = _Injected(fault.kind, resolved, settings)
    record.heals_by = _iso((fault.at or time.time()) + fault.duration)
    record.heal = lambda: restore(hosts, settings, [fault.id])
    record.undo = {"by": "hosts", "fault_ids": [fault.id], "hosts": [_spec(host) for host in hosts]}
    ledger.save()  # on disk before any host is reached: a run killed from here on is healed by cleanup
    undo.add_check("hosts", left_behind)


def _spec(host: Host) -> dict[str, Any]:
    """A host as ``parse_hosts`` takes it back (no credential: the cleanup's var file gives them)."""
    return {"address": host.address, "port": host.port, **({"name": host.name} if host.name else {}),
            **({"user": host.user} if host.user else {})}


@ledger.healer("hosts")
def _heal_from_record(undo_spec: dict, configuration: dict, secrets: dict) -> None:
    """Restore the record's faults on those of its hosts that the cleanup names (lab_hosts)."""
    named = {host.address for host in parse_hosts(configuration.get("lab_hosts") or [])} if configuration.get("lab_hosts") else set()
    hosts = [host for host in parse_hosts(undo_spec["hosts"]) if host.address in named]
    if not hosts:
        raise ledger.Elsewhere(f"on hosts {', '.join(h['address'] for h in undo_spec['hosts'])}, not among the hosts given")
    restore(hosts, SSHSettings.from_chaos(configuration, secrets), undo_spec["fault_ids"])


def left_behind() -> list[dict]:
    """What this run's host faults left on their hosts (markers, rules, qdiscs, files, stopped or
    stray processes, pending timers): one SSH session per host, all hosts at once."""
    per_host: dict[Host, list[str]] = {}
    settings: dict[Host, SSHSettings] = {}
    for fault_id, injected in memory.section(_INJECTED).items():
        for host, found in injected.resolved.items():
            values = [fault_id, injected.kind, found.get("DEV", ""), found.get("F", ""), found.get("PIDS", "")]
            per_host.setdefault(host, []).append("check " + shlex.join(values))
            settings[host] = injected.settings
    results, errors = fan_out(list(per_host), lambda host: run_script(
        host, host_script("leftovers.sh", {"CHAOSALI_MARKER_ROOT": MARKER_ROOT}, per_host[host]), settings[host]))
    found = {host: [{"what": what, "detail": detail} for what, _, detail in (line.partition("\t") for line in out.splitlines())]
             for host, out in results.items()}
    found.update({host: [{"what": "unchecked", "detail": f"the check could not run: {reason}"}]
                  for host, reason in errors.items()})
    return [{"where": str(host), "left": left,
             "cleanup": f"chaosali cleanup --var-file VARS --hosts {host.address}"
                        + ("" if host.port == host.default_port else f":{host.port}")}
            for host, left in found.items()]


def _together(at: float, hosts: list[dict]) -> dict:
    """The instant chosen for faults that start together, and how far apart they took effect."""
    instants = [dt.datetime.fromisoformat(entry["effective_at"]).timestamp()
                for entry in hosts if "effective_at" in entry]
    skew = round(max(instants) - min(instants), 6) if instants else None
    logger.info("chaosali: faults started together at %s, skew %s s", _iso(at), skew)
    return {"start_at": _iso(at), "skew_seconds": skew}


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat()


def restore_script_for(fault_ids: list[str] | None, kind_prefix: str) -> str:
    """Host script that restores the given faults, or every fault, whose kind starts with the prefix."""
    ids = [f"{FAULT_ID_PREFIX}*"] if fault_ids is None else fault_ids  # [] restores nothing, not everything
    markers = " ".join(f"{MARKER_ROOT}/{fault_id}" for fault_id in ids)
    return host_script("restore.sh", {"CHAOSALI_MARKERS": markers, "CHAOSALI_KIND_PREFIX": kind_prefix})


def restore(
    hosts: list[Host], settings: SSHSettings, fault_ids: list[str] | None = None, kind_prefix: str = ""
) -> dict:
    """Restore faults on every host at once: by id, or all of the kind (``""`` means every kind).
    The output adds, under ``observed``, what each load restored made its host carry."""
    results = run_everywhere(hosts, restore_script_for(fault_ids, kind_prefix), settings, "restore")
    restored = {str(host): [line for line in out.split("\n") if line and " " not in line]
                for host, out in results.items()}
    logger.info("chaosali: restored %s", json.dumps(restored))
    for fault_id in {fault_id for ids in restored.values() for fault_id in ids}:
        ledger.closed(fault_id)
    observed = {str(host): summarise_loads(out.splitlines()) for host, out in results.items()}
    observed = {host: loads for host, loads in observed.items() if loads}
    return {"restored": restored, **({"observed": observed} if observed else {})}


def run_everywhere(hosts: list[Host], script: str, settings: SSHSettings, what: str) -> dict[Host, str]:
    """Run ``script`` on every host in parallel; fail naming each host it failed on."""
    results, errors = fan_out(hosts, lambda host: run_script(host, script, settings))
    if errors:
        raise ActivityFailed(
            f"{what} failed on {len(errors)} of {len(hosts)} host(s): "
            + "; ".join(f"{host}: {reason}" for host, reason in errors.items())
            + ("; faults heal by themselves at the end of their duration" if what == "restore" else "")
        )
    return results
