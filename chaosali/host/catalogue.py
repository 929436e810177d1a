"""The host fault catalogue: one entry per kind of fault that stays on a host until it heals.

The host actions build their faults through it, random drills draw from its actions and restore by
its kinds, cleanup runs its sweeps, the FMEA catalogue (and a preflight check) read what a host
needs from it. A new kind is one entry, one builder and one test.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

from chaosali.host import disk, network, process, system
from chaosali.host.faults import FaultScript

__all__ = ["Need", "FaultKind", "ARMING", "CATALOGUE", "ONE_SHOT", "fault_kind", "DELAY_MECHANISM"]


@dataclass(frozen=True)
class Need:
    """A command a fault runs on its hosts."""

    command: str  # looked up on the host's PATH
    # what of it must work; the preflight (chaosali.host.preflight) tries "<kind> qdisc",
    # "<name> match", "default route" and DELAY_MECHANISM, and shows any other words
    detail: str = ""
    optional: bool = False  # without it the fault falls back to plain shell
    setting: str = ""  # a configuration key whose command (its first word) replaces ``command``

    def __str__(self) -> str:
        text = f"{self.command} ({self.detail})" if self.detail else self.command
        text = f"configuration {self.setting} (default {text})" if self.setting else text
        return text + (" if present" if self.optional else "")


@dataclass(frozen=True)
class FaultKind:
    """One kind of host fault. Its marker carries ``kind``, ``<family>-<what>``: restoring a family
    (``restore_network``) restores every kind that begins with ``<family>-``."""

    kind: str
    action: str  # the host action (chaosali.host.actions) that injects it
    builder: Callable[..., FaultScript]  # (kind, the action's fault arguments) -> its script
    needs: tuple[Need, ...]
    sweep: str | None = None  # a packaged script (sh/) that removes what it leaves without a marker
    # the action's arguments that name a file the fault edits (one of them per fault): a preflight
    # checks their defaults exist on the host
    files: tuple[str, ...] = ()

    @property
    def family(self) -> str:
        return self.kind.partition("-")[0]

    def build(self, **arguments: Any) -> FaultScript:
        """The fault for an action's arguments, each checked before any host is reached."""
        return self.builder(self.kind, **arguments)


# what every lasting fault runs besides its own needs: the fault shell (sh/fault.sh) arms its
# dead-man timer with setsid, and detaches a fault that may cut the session with nohup
ARMING = (Need("setsid"), Need("nohup"))
_SERVICE = Need("systemctl", setting="service_command")
_STRESS_NG = Need("stress-ng", optional=True)
_ROUTE = Need("ip", "default route")
#: What a delay needs, as the preflight tries it: tc netem, or iptables' NFQUEUE and the delayer.
DELAY_MECHANISM = "netem qdisc, or NFQUEUE and the delayer"
# a process fault finds its processes in /proc (sh/process.sh); a unit's main PID through systemctl
_PROCESS = (Need("readlink"), Need("sed"), Need("systemctl", "unit main PID", optional=True))

CATALOGUE: tuple[FaultKind, ...] = (
    FaultKind("network-cut", "cut_network", functools.partial(network.drop_fault, percent=100),
              (Need("iptables"),), sweep="sweep.sh"),
    FaultKind("network-loss", "lose_packets", network.drop_fault, (Need("iptables", "statistic match"),),
              sweep="sweep.sh"),
    FaultKind("network-bandwidth", "limit_bandwidth", network.bandwidth_fault, (Need("tc", "tbf qdisc"), _ROUTE)),
    # netem, or where the kernel has none the NFQUEUE delayer run by the host's Python (with fnfqueue)
    FaultKind("network-delay", "delay_network", network.delay_fault,
              (Need("python3", DELAY_MECHANISM, setting="delay_python"), _ROUTE), sweep="sweep.sh"),
    FaultKind("kubelet-config", "reconfigure_kubelet", system.kubelet_fault, (Need("sed"), _SERVICE),
              files=("kubeconfig_path", "config_path")),
    FaultKind("service-stop", "stop_service", system.service_fault, (_SERVICE,)),
    FaultKind("stress-cpu", "stress_cpu", system.stress_cpu_fault, (_STRESS_NG,)),
    FaultKind("stress-memory", "stress_memory", system.stress_memory_fault, (_STRESS_NG,)),
    FaultKind("process-pause", "pause_process", process.pause_fault, _PROCESS),
    FaultKind("disk-fill", "fill_disk", disk.fill_fault, (Need("df"), Need("fallocate", optional=True))),
)

# Host actions that change a host once and leave no fault to restore, with what they run there.
ONE_SHOT: dict[str, tuple[Need, ...]] = {
    "restart_service": (_SERVICE,),
    "reboot_host": (Need("systemctl", setting="reboot_command"), *ARMING),
    "kill_process": _PROCESS,
}

_BY_ACTION = {entry.action: entry for entry in CATALOGUE}


def fault_kind(action: Any) -> FaultKind | None:
    """The catalogue entry of a host action, or None for an action that injects no lasting fault."""
    return _BY_ACTION.get(action) if isinstance(action, str) else None
