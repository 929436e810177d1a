"""Benchmark: inject then restore a network cut on 1 host and on 16 hosts, in one run.

1. Prints t(16)/t(1) for chaosali's parallel fan-out (aim: <= 1.5) and, side by side, the same
   ratio for a one-host-after-another loop as the baseline, and the floor: the same fan-out
   running only `true` twice over SSH (here the 16 lab hosts' sshd share the controller's two
   cores, so their sessions alone cost that much).
2. Then how far apart the 16 hosts' faults take effect (the last host's instant minus the first's,
   as each host records it): with `start_together` (aim: <= 50 ms) and, beside it, the plain
   fan-out (a lead of 0: each host applies as soon as its session gets there).

Needs root: it brings up its own lab (csbench, 10.215.0.0/24; with --quick
csqfanout, 10.232.0.0/24).

    python bench/fanout.py [--hosts 16] [--rounds 5]
    python bench/fanout.py --quick      # 4 hosts, 1 round
"""

import argparse
import json
import statistics
import time

from chaosali.core.fanout import fan_out
from chaosali.host.actions import cut_network, restore_network
from chaosali.host.ssh import SSHSettings, parse_hosts, run_script
from chaosali.lab.hosts import Lab

from _cli import parse  # bench/_cli.py


def inject_and_restore(targets: list, chaos: dict) -> float:
    started = time.perf_counter()
    cut_network(targets, duration=60, **chaos)
    restore_network(targets, **chaos)
    return time.perf_counter() - started


def ssh_only(targets: list, chaos: dict) -> float:
    """Two SSH sessions per host, as inject + restore make, that only run `true`."""
    settings, hosts = SSHSettings.from_chaos(chaos["configuration"], chaos["secrets"]), parse_hosts(targets)
    started = time.perf_counter()
    for _ in range(2):
        fan_out(hosts, lambda host: run_script(host, "true", settings))
    return time.perf_counter() - started


def skew(targets: list, chaos: dict, lead: float) -> float:
    """Seconds between the first and the last host's fault taking effect, started ``lead`` s ahead."""
    configuration = {**chaos["configuration"], "start_together_lead": lead}
    output = cut_network(targets, duration=60, ports=[9], start_together=True, configuration=configuration,
                         secrets=chaos["secrets"])
    restore_network(targets, **chaos)
    return output["skew_seconds"]


def timings(addresses: list[str], chaos: dict, rounds: int) -> None:
    n = len(addresses)
    times: dict[str, list[float]] = {
        name: [] for name in ("parallel 1", f"parallel {n}", "loop 1", f"loop {n}", "ssh only 1", f"ssh only {n}")
    }
    for _ in range(rounds):  # interleaved, so that machine noise hits every variant alike
        times["parallel 1"].append(inject_and_restore(addresses[:1], chaos))
        times[f"parallel {n}"].append(inject_and_restore(addresses, chaos))
        times["loop 1"].append(inject_and_restore(addresses[:1], chaos))
        times[f"loop {n}"].append(sum(inject_and_restore([a], chaos) for a in addresses))
        times["ssh only 1"].append(ssh_only(addresses[:1], chaos))
        times[f"ssh only {n}"].append(ssh_only(addresses, chaos))
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, value in median.items():
        print(f"{name:>12}: median {value * 1000:7.0f} ms over {rounds} rounds")
    print(f"parallel fan-out  t({n})/t(1) = {median[f'parallel {n}'] / median['parallel 1']:.2f}  (aim <= 1.5)")
    print(f"sequential loop   t({n})/t(1) = {median[f'loop {n}'] / median['loop 1']:.2f}  (baseline)")
    print(f"ssh sessions only t({n})/t(1) = {median[f'ssh only {n}'] / median['ssh only 1']:.2f}  (floor in this lab)")


def skews(addresses: list[str], chaos: dict, rounds: int) -> None:
    values: dict[str, list[float]] = {"start_together": [], "plain fan-out": []}
    for _ in range(rounds):
        values["start_together"].append(skew(addresses, chaos, 2.0))
        values["plain fan-out"].append(skew(addresses, chaos, 0))
    for name, seconds in values.items():
        print(f"{name:>14}: skew across {len(addresses)} hosts median {statistics.median(seconds) * 1000:6.1f} ms, "
              f"max {max(seconds) * 1000:6.1f} ms over {rounds} rounds"
              + ("  (aim <= 50 ms)" if name == "start_together" else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parse(parser, {"hosts": 4, "rounds": 1},
                 labs=({"name": "csbench", "subnet": "10.215.0.0/24"},
                       {"name": "csqfanout", "subnet": "10.232.0.0/24"}))

    lab = Lab(**args.lab)
    lab.down()  # whatever a killed run left behind
    lab.up(hosts=args.hosts)
    try:
        variables = json.loads(lab.vars_path.read_text())
        chaos = {"configuration": variables["configuration"], "secrets": variables["secrets"]["ssh"]}
        addresses = [host.address for host in lab.hosts]
        timings(addresses, chaos, args.rounds)
        skews(addresses, chaos, args.rounds)
    finally:
        lab.down()

if __name__ == "__main__":
    main()
