"""Soak: a `chaos run` SIGKILLed in the middle of a fault, over and over; does every host heal on
its own dead-man timer, on time?

Each trial starts a real `chaos run` whose experiment injects one fault for DURATION seconds on a
worker of a lab of its own, waits until the fault is in effect on the host, then SIGKILLs the whole
`chaos` process group: no rollback, no control, no cleanup runs. It then watches the host until
the fault is undone (the effect gone and its marker removed). Lateness is that moment minus the
moment the dead-man timer was armed (its timer.pid's mtime on the host) minus DURATION.

Two faults: a network cut (iptables chains) and a kubelet misconfiguration (kubelet.conf pointed
at a wrong API server, the kubelet restarted). Prints, per fault, how many healed within
DURATION + 2 s and the worst lateness. Needs root: brings up its own lab cluster (cssoak,
10.231.0.0/24; with --quick csqsoak, 10.236.0.0/24) and brings it down at the end.

    python bench/soak.py [--trials 20] [--duration 5] [--keep]
    python bench/soak.py --quick        # 1 trial per fault, 3 s faults
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from chaosali.host import faults
from chaosali.host.ssh import Host, SSHSettings
from chaosali.lab.cluster import Cluster
from chaosali.lab.hosts import Lab, LabHost

from _cli import parse  # bench/_cli.py

CHAOS = Path(sys.executable).with_name("chaos")
GRACE = 2.0  # the aim: healed within duration + 2 s


@dataclass
class Fault:
    name: str
    action: str
    arguments: Callable[[Lab], dict]
    in_effect: Callable[[Lab, LabHost], bool]


def _iptables_cut(lab: Lab, host: LabHost) -> bool:
    rules = subprocess.run(["ip", "netns", "exec", host.namespace, "iptables", "-w", "-S", "INPUT"],
                           capture_output=True, text=True, check=True).stdout
    return "chaosali-" in rules


def _wrong_api(lab: Lab) -> str:
    """An API server address in the lab's range that nobody answers."""
    return f"https://{ipaddress.ip_network(lab.subnet)[250]}:6443"


def _kubelet_misconfigured(lab: Lab, host: LabHost) -> bool:
    return _wrong_api(lab) in (lab.host_dir(host) / "fs/etc/kubernetes/kubelet.conf").read_text()


FAULTS = [
    Fault("network cut", "cut_network", lambda lab: {}, _iptables_cut),
    Fault("kubelet fault", "reconfigure_kubelet", lambda lab: {"apiserver": _wrong_api(lab)}, _kubelet_misconfigured),
]


def _markers(lab: Lab, host: LabHost) -> list[Path]:
    return sorted((lab.host_dir(host) / "fs/run/chaosali").glob("chaosali-*"))


def _until(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> float | None:
    """The wall-clock time at which ``condition`` first held, or None after ``timeout``."""
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        if condition():
            return time.time()
        time.sleep(step)
    return None


def trial(lab: Lab, host: LabHost, fault: Fault, duration: float, variables: dict, workdir: Path) -> float | None:
    """One SIGKILLed run; the lateness of the healing in seconds, or None if it never healed."""
    experiment = {
        "title": f"soak: {fault.name}, controller killed",
        "description": "bench/soak.py",
        "configuration": variables["configuration"],
        "secrets": variables["secrets"],
        "method": [{
            "type": "action", "name": fault.action,
            "provider": {"type": "python", "module": "chaosali.host.actions", "func": fault.action,
                         "secrets": ["ssh"],
                         "arguments": {"targets": [host.address], "duration": duration, **fault.arguments(lab)}},
            "pauses": {"after": duration + 60},  # the run is still going when it is killed
        }],
        "rollbacks": [],
    }
    path = workdir / "experiment.json"
    path.write_text(json.dumps(experiment))
    run = subprocess.Popen([str(CHAOS), "--no-version-check", "--log-file", str(workdir / "chaos.log"), "run",
                            "--journal-path", str(workdir / "journal.json"), str(path)],
                           cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        if _until(lambda: fault.in_effect(lab, host) and bool(_markers(lab, host)), 60) is None:
            raise RuntimeError(f"{fault.name}: the fault never took effect; see {workdir / 'chaos.log'}")
        os.killpg(run.pid, signal.SIGKILL)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    armed = (_markers(lab, host)[0] / "timer.pid").stat().st_mtime
    healed = _until(lambda: not fault.in_effect(lab, host) and not _markers(lab, host), duration + 30)
    return None if healed is None else healed - armed - duration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20, help="trials per fault (default 20)")
    parser.add_argument("--duration", type=float, default=5.0, help="each fault's duration in seconds (default 5)")
    parser.add_argument("--keep", action="store_true", help="leave the lab up at the end")
    args = parse(parser, {"trials": 1, "duration": 3},
                 labs=({"name": "cssoak", "subnet": "10.231.0.0/24"},
                       {"name": "csqsoak", "subnet": "10.236.0.0/24"}))

    lab = Lab(**args.lab)
    lab.down()  # a soak killed earlier may have left it behind
    try:
        Cluster(lab, nodes="kwok").up(masters=1, workers=1)
        variables = json.loads(lab.vars_path.read_text())
        host = next(h for h in lab.hosts if "worker" in h.name)
        settings = SSHSettings.from_chaos(variables["configuration"], variables["secrets"]["ssh"])
        for fault in FAULTS:
            late: list[float | None] = []
            for number in range(1, args.trials + 1):
                with tempfile.TemporaryDirectory(prefix="chaosali-soak-") as workdir:
                    late.append(trial(lab, host, fault, args.duration, variables, Path(workdir)))
                shown = "never healed" if late[-1] is None else f"{late[-1]:+.2f} s"
                print(f"{fault.name} #{number}: {shown}", flush=True)
                if late[-1] is None:  # heal it by hand so that the next trial starts clean
                    faults.restore([Host(host.address)], settings)
            healed = [x for x in late if x is not None]
            on_time = sum(1 for x in healed if x <= GRACE)
            worst = "n/a" if not healed else f"{max(healed):+.2f} s"
            median = "n/a" if not healed else f"{statistics.median(healed):+.2f} s"
            print(f"{fault.name}: {on_time}/{len(late)} healed within duration + {GRACE:g} s "
                  f"(duration {args.duration:g} s); lateness worst {worst}, median {median}"
                  + (f"; {len(late) - len(healed)} never healed" if len(healed) < len(late) else ""), flush=True)
    finally:
        if not args.keep:
            lab.down()


if __name__ == "__main__":
    main()
