"""Evidence that a host fault happened, read from the host itself rather than from the action's
return value: a reboot changes the host's boot identity, a load shows in what the host carried.

What an action expects to be proved is kept in the run's memory (``chaosali.core.memory``), so a
probe later in the same run finds it without the experiment copying ids or times around.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

from chaosali.core import memory
from chaosali.core.errors import EndpointError
from chaosali.core.markers import MARKER_ROOT
from chaosali.core.waiting import wait_until
from chaosali.host.ssh import Host, SSHSettings, run_script

__all__ = [
    "BOOT_IDENTITY", "remember_boots", "boots_before", "boots_before_any", "wait_for_new_boot",
"remember_loads", "loads_injected", "read_loads_script",
    "summarise_loads",
]

# The kernel's boot id changes when a machine boots; PID 1's start time (clock ticks since the
# machine booted, field 22 of /proc/1/stat) changes when a PID namespace's init starts again, as a
# container or a lab host "reboots" while the machine does not.
BOOT_IDENTITY = ('echo "$(cat /proc/sys/kernel/random/boot_id) '
                 '$(sed "s/.*) //" /proc/1/stat | cut -d " " -f 20)"')
_BOOTS = "boot identities before reboot"
_LOADS = "load faults injected"
# one line per second from the load's sampler (sh/load-sample.sh), after the fault id and kind
_SAMPLE_FIELDS = ("t", "cpu_busy_percent", "load_average", "memory_available_mb", "load_cpu_percent",
                  "load_memory_mb", "load_processes")


def _key(host: Host) -> str:
    return f"{host.address}:{host.port}"


def remember_boots(identities: dict[Host, str]) -> None:
    """Keep each host's boot identity, read just before its reboot, and when that was."""
    section = memory.section(_BOOTS)
    for host, identity in identities.items():
        section[_key(host)] = {"identity": identity, "at": time.monotonic()}


def boots_before(hosts: list[Host]) -> dict[Host, dict]:
    """The identities remembered for these hosts (those that ``reboot_host`` rebooted in this run)."""
    section = memory.section(_BOOTS)
    return {host: section[_key(host)] for host in hosts if _key(host) in section}


def boots_before_any() -> bool:
    """Whether ``reboot_host`` rebooted any host in this run."""
    return bool(memory.section(_BOOTS))


def wait_for_new_boot(
    host: Host, before: dict, settings: SSHSettings, port_open: Callable[[Host], bool], deadline: float
) -> dict:
    """Poll ``host`` until its boot identity differs from ``before``: when its SSH port closed,
    when SSH answered again, and the new identity. Raises :class:`EndpointError` at ``deadline``."""
    quick = dataclasses.replace(settings, connect_timeout=2.0, command_timeout=5.0)
    closed_at = answered_at = None
    seen, down = before["identity"], False

    def rebooted() -> bool:
        nonlocal closed_at, answered_at, seen, down
        down = not port_open(host)
        if not down:
            try:
                seen = run_script(host, BOOT_IDENTITY, quick).strip()
            except EndpointError:  # sshd is starting, or the host is going down
                down = True
            else:
                if seen != before["identity"]:
                    answered_at = time.monotonic()
                    return True
        closed_at = closed_at or (time.monotonic() if down else None)
        return False

    wait_until(rebooted, deadline, 0.2)
    if answered_at is None:
        why = ("its SSH port never closed" if closed_at is None else "SSH is still down" if down
               else "SSH went away but came back with the same boot")
        raise EndpointError(
            f"no reboot seen: the boot identity is still {seen} ({why}); check that configuration "
            "reboot_command really reboots the host, or raise timeout"
        )
    return {
        "host": str(host),
        "address": host.address,
        "boot_before": before["identity"],
        "boot_after": seen,
        # a host that is back before the first poll finds its port closed shows no down time
        "down_seconds": None if closed_at is None else round(answered_at - closed_at, 2),
        "answered_after_seconds": round(answered_at - before["at"], 2),
    }


def remember_loads(output: dict) -> None:
    """Keep the load fault an action injected, with its hosts, for ``load_observed``."""
    section = memory.section(_LOADS)
    section[output["fault_id"]] = [entry["address"] for entry in output["hosts"] if entry.get("ok")]


def loads_injected(hosts: list[Host]) -> dict[Host, list[str]]:
    """The load faults injected in this run on each of these hosts."""
    section = memory.section(_LOADS)
    found = {host: [fault_id for fault_id, addresses in section.items() if host.address in addresses]
             for host in hosts}
    return {host: ids for host, ids in found.items() if ids}


def read_loads_script(fault_ids: list[str]) -> str:
    """Host script that prints the samples of these load faults, each line after its id and kind
    (the format the restore prints too); it removes nothing."""
    markers = " ".join(f"{MARKER_ROOT}/{fault_id}" for fault_id in fault_ids)
    return (f'for d in {markers}; do [ -f "$d/samples" ] || continue; '
            'sed "s/^/${d##*/} $(cat "$d/kind") /" "$d/samples"; done\n')


def summarise_loads(lines: list[str]) -> dict[str, dict]:
    """Per fault id, what its load made the host carry, from sample lines ``<id> <kind> <fields>``."""
    samples: dict[str, tuple[str, list[dict[str, float]]]] = {}
    for line in lines:
        words = line.split()
        if len(words) != 2 + len(_SAMPLE_FIELDS):
            continue
        try:
            values = dict(zip(_SAMPLE_FIELDS, map(float, words[2:])))
        except ValueError:
            continue
        samples.setdefault(words[0], (words[1], []))[1].append(values)
    return {fault_id: _summary(kind, rows) for fault_id, (kind, rows) in samples.items()}


def _summary(kind: str, rows: list[dict[str, float]]) -> dict:
    live = [row for row in rows if row["load_processes"] > 0]
    cpu = round(sum(row["load_cpu_percent"] for row in live) / len(live), 1) if live else 0.0
    held = max((row["load_memory_mb"] for row in live), default=0.0)
    # the load must have lived through most of its samples and done what its kind does; a CPU
    # floor only, as a busy machine gives one busy loop a fraction of a CPU
    effect = cpu >= 10 if kind == "stress-cpu" else held >= 1
    return {
        "kind": kind,
        "samples": len(rows),
        "seconds_live": len(live),
        "load_cpu_percent": cpu,
        "load_memory_mb": held,
        "host_cpu_busy_percent_max": max(row["cpu_busy_percent"] for row in rows),
        "host_load_average_max": max(row["load_average"] for row in rows),
        "host_memory_available_mb_min": min(row["memory_available_mb"] for row in rows),
        "took_effect": effect and len(live) * 2 >= len(rows),
    }
