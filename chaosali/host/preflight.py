"""The preflight: can each host take each fault, and heal it, before a drill relies on it?

One SSH session per host runs ``sh/check.sh`` the way a fault runs (as root, or through
``sudo -n``), so that it sees what a fault would see: its privilege, its PATH, its kernel. The
checks come from the fault catalogue's ``needs``; the script changes nothing on the host. Each
fault is ready on a host when every check it requires passed; the clock offset and the free space
are reported, never judged.
"""

from __future__ import annotations

import inspect
import re
import time
from dataclasses import dataclass, field
from typing import Any

from chaoslib.types import Configuration

from chaosali.core.errors import EndpointError, InvalidArgument
from chaosali.core.fanout import fan_out
from chaosali.core.markers import MARKER_ROOT
from chaosali.host import actions
from chaosali.host.catalogue import ARMING, CATALOGUE, DELAY_MECHANISM, ONE_SHOT, Need
from chaosali.host.faults import host_script
from chaosali.host.ssh import Host, SSHSettings, SudoRefused, run_script

__all__ = ["FAULTS", "fault_names", "check_script", "check_hosts", "table", "SPACE_PATH"]

# every host action, lasting faults first: what a check covers when it is not told
FAULTS = [entry.action for entry in CATALOGUE] + list(ONE_SHOT)
# where a fill_disk fault would write: the preflight reports the free space there
SPACE_PATH = "/var/tmp"
# a clock further off than this is flagged: faults meant to start together would not
CLOCK_WARNING_SECONDS = 1.0
# the smallest valid use of each qdisc and match, tried in a network namespace of the check's own
_QDISC_ARGUMENTS = {"tbf": "rate 1mbit burst 32kb latency 400ms", "netem": "delay 1ms"}
_MATCH_ARGUMENTS = {"statistic": "--mode random --probability 0.5"}
_TRIED = re.compile(r"(?P<name>[a-z0-9_-]+) (?P<what>qdisc|match)", re.ASCII)
_COMMAND = re.compile(r"[A-Za-z0-9._/+-]+", re.ASCII)
# the check of how a delay would hold packets (netem, or NFQUEUE and the delayer run by this Python)
_DELAY_CHECK = "delay via "


@dataclass
class _Fault:
    """What one fault requires: groups of checks, each met when one of its checks passed."""

    name: str
    label: str  # how a failure begins: "delay unavailable: ..."
    groups: list[list[str]] = field(default_factory=list)


def fault_names(faults: Any) -> list[str]:
    """Host action names from action names or fault kinds (a list, or text separated by commas);
    None means every one."""
    if faults is None:
        return list(FAULTS)
    names = faults.split(",") if isinstance(faults, str) else faults
    by_kind = {entry.kind: entry.action for entry in CATALOGUE}
    if not isinstance(names, list) or not names:
        raise InvalidArgument(f"faults {faults!r} must be a list of host actions, e.g. ['cut_network', 'stress_cpu']")
    chosen = []
    for name in names:
        action = by_kind.get(name.strip(), name.strip()) if isinstance(name, str) else name
        if action not in FAULTS:
            raise InvalidArgument(f"fault {name!r} is not a host action or fault kind; known: {', '.join(FAULTS)}")
        chosen.append(action)
    return list(dict.fromkeys(chosen))


def _command(need: Need, configuration: Configuration) -> str:
    """The command a need runs on the host: its setting's first word, if configured."""
    configured = (configuration or {}).get(need.setting) if need.setting else None
    command = configured.split()[0] if isinstance(configured, str) and configured.split() else need.command
    if not _COMMAND.fullmatch(command):
        raise InvalidArgument(f"configuration {need.setting} {configured!r}: its command {command!r} is not a plain path")
    return command


def _requirements(name: str, configuration: Configuration) -> tuple[_Fault, list[str]]:
    """What fault ``name`` requires, and the optional checks worth showing with it."""
    entry = next((e for e in CATALOGUE if e.action == name), None)
    if entry is None:
        fault, needs = _Fault(name, name.replace("_", " ")), ONE_SHOT[name]
    else:
        label = entry.kind.partition("-")[2] if entry.family == "network" else entry.kind.replace("-", " ")
        fault, needs = _Fault(name, label, [["marker root"]]), (*ARMING, *entry.needs)
        defaults = inspect.signature(getattr(actions, name)).parameters
        if entry.files:  # the fault edits one of them
            fault.groups.append([f"file {defaults[argument].default}" for argument in entry.files])
    fault.groups.insert(0, ["privilege"])
    optional = []
    for need in needs:
        command = _command(need, configuration)
        checks = [f"command {command}"] + (["iptables"] if command == "iptables" else [])
        tried = _TRIED.fullmatch(need.detail)
        if need.detail == DELAY_MECHANISM:  # one check says which of two ways a delay would take
            checks = [f"{_DELAY_CHECK}{command}"]
        elif tried:
            checks.append(f"{tried['what']} {tried['name']}")
        elif need.detail == "default route":
            checks.append("route")
        if need.optional:
            optional += checks
        else:
            fault.groups += [[check] for check in checks]
    return fault, optional


def check_script(faults: list[str], configuration: Configuration) -> str:
    """The host script that runs every check ``faults`` need (and their optional ones)."""
    return _script(_plan(faults, configuration)[1])


def _plan(faults: list[str], configuration: Configuration) -> tuple[list[tuple[_Fault, list[str]]], list[str]]:
    required = [_requirements(name, configuration) for name in faults]
    return required, list(dict.fromkeys(c for fault, optional in required for group in fault.groups for c in group + optional))


def _script(checks: list[str]) -> str:
    def named(prefix: str) -> list[str]:
        return [check.removeprefix(prefix) for check in checks if check.startswith(prefix)]

    values = {
        "CHAOSALI_COMMANDS": " ".join(named("command ")),
        "CHAOSALI_QDISCS": "\n".join(f"{q} {_QDISC_ARGUMENTS.get(q, '')}".strip() for q in named("qdisc ")),
        "CHAOSALI_MATCHES": "\n".join(f"{m} {_MATCH_ARGUMENTS.get(m, '')}".strip() for m in named("match ")),
        "CHAOSALI_IPTABLES": "yes" if "iptables" in checks else "no",
        "CHAOSALI_ROUTE": "yes" if "route" in checks else "no",
        "CHAOSALI_FILES": " ".join(named("file ")),
        "CHAOSALI_DELAY_PYTHON": " ".join(named(_DELAY_CHECK)),
        "CHAOSALI_MARKER_ROOT": MARKER_ROOT,
        "CHAOSALI_SPACE_PATH": SPACE_PATH,
    }
    return host_script("check.sh", values)


def check_hosts(hosts: list[Host], faults: list[str], configuration: Configuration, settings: SSHSettings) -> dict:
    """Check every host at once, one SSH session each; return the report (JSON-able)."""
    required, checks = _plan(faults, configuration)
    script = _script(checks)
    required_checks = {c for fault, _ in required for group in fault.groups for c in group}
    optional = {c for _, extra in required for c in extra} - required_checks

    def one(host: Host) -> dict:
        user = host.user or settings.user
        sent = time.time()
        try:
            out = run_script(host, script, settings)
        except SudoRefused as error:
            return _judged(host, [_row("login", "ok", f"as {user}"), _row("privilege", "fail", str(error))], required)
        except EndpointError as error:
            return _judged(host, [_row("login", "fail", str(error))], required)
        received = time.time()
        sudo = settings.sudo if settings.sudo is not None else user != "root"
        rows = [_row("login", "ok", f"as {user}" + (", root through sudo -n" if sudo else ""))]
        rows += [_row(*line.split("\t", 2)) for line in out.splitlines() if line.count("\t") >= 2]
        report = _judged(host, rows, required)
        for row in rows:
            if row["check"] == "clock":
                # the host tells its time last: against our time when its answer came, it is off by
                # less than the whole session lasted
                offset, uncertainty = float(row["detail"]) - received, received - sent
                report["clock_offset_seconds"] = round(offset, 3)
                row["detail"] = f"{offset:+.3f} s (±{uncertainty:.3f} s) from the controller"
                if abs(offset) > uncertainty + CLOCK_WARNING_SECONDS:
                    row["status"] = "warn"
                    row["detail"] += ": faults meant to start together will not"
            elif row["check"] == "free space":
                path, _, kib = row["detail"].partition(" ")
                free = int(kib) * 1024 if kib.isdigit() else None
                report["free_space"] = {"path": path, "bytes": free}
                row["detail"] = f"{path}: {free / 2**30:.1f} GiB free" if free is not None else f"{path}: unknown"
            elif row["check"] in optional and row["status"] == "fail":
                row["status"], row["detail"] = "info", f"{row['detail']}: the faults use their plain-shell fallback"
        return report

    results, errors = fan_out(hosts, one)
    reports = [results[h] if h in results else _judged(h, [_row("login", "fail", errors[h])], required) for h in hosts]
    return {"ready": all(r["ready"] for r in reports), "faults": faults, "hosts": reports}


def _row(check: str, status: str, detail: str) -> dict:
    return {"check": check, "status": status, "detail": detail}


def _judged(host: Host, rows: list[dict], required: list[tuple[_Fault, list[str]]]) -> dict:
    """The host's report: its rows, and per fault whether it is ready or why not."""
    by_check = {row["check"]: row for row in rows}
    blocker = next((row for row in rows if row["check"] in ("login", "privilege") and row["status"] != "ok"), None)
    verdicts = []
    for fault, _ in required:
        if blocker:  # its row tells why
            reasons = [f"no {blocker['check']}"]
        else:
            failed = [group for group in fault.groups
                      if not any(by_check.get(check, {}).get("status") == "ok" for check in group)]
            # a missing command fails its own check and those that use it, with the same words
            reasons = list(dict.fromkeys(
                " and ".join(by_check.get(c, {}).get("detail") or f"{c}: not checked" for c in group)
                for group in failed))
        verdicts.append({"fault": fault.name, "ready": not reasons,
                         "reason": f"{fault.label} unavailable: {'; '.join(reasons)}" if reasons else ""})
    return {"host": str(host), "address": host.address, "ready": all(v["ready"] for v in verdicts),
            "checks": rows, "faults": verdicts}


def table(report: dict) -> str:
    """The report as a table: one line per host and check, then per fault; the reason of each failure."""
    lines = [("HOST", "CHECK", "RESULT", "DETAIL")]
    for host in report["hosts"]:
        shown = host["host"]
        for row in host["checks"]:
            lines.append((shown, row["check"], row["status"], row["detail"]))
            shown = ""
        for verdict in host["faults"]:
            lines.append(("", f"fault {verdict['fault']}", "ready" if verdict["ready"] else "FAIL", verdict["reason"]))
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[3] for line in lines]
    unready = []
    for host in report["hosts"]:
        blocker = next((r for r in host["checks"] if r["check"] in ("login", "privilege") and r["status"] != "ok"), None)
        if blocker:
            unready.append(f"{host['host']}: {blocker['check']}: {blocker['detail']}")
        elif not host["ready"]:
            unready.append(f"{host['host']}: {', '.join(v['fault'] for v in host['faults'] if not v['ready'])}")
    text.append(f"ready: every host can take and heal {', '.join(report['faults'])}" if report["ready"]
                else "NOT READY: " + "; ".join(unready))
    return "\n".join(line.rstrip() for line in text) + "\n"
