"""Benchmark: inject then restore a network cut on 1 host and on 16 hosts, in one run.

Prints t(16)/t(1) for chaosali's parallel fan-out (aim: <= 1.5) and, side by side, the same
ratio for a one-host-after-another loop as the baseline, and the floor: the same fan-out running
only `true` twice over SSH (here the 16 lab hosts' sshd share the controller's two cores, so
their sessions alone cost that much). Needs root: it brings up its own lab.

With --skew, it measures instead how far apart the 16 hosts' faults take effect (the last host's
instant minus the first's, as each host records it): with `start_together` (aim: <= 50 ms) and,
beside it, the plain fan-out (a lead of 0: each host applies as soon as its session gets there).

    python bench/fanout.py [--rounds 5] [--skew]
"""

import argparse
import json
import statistics
import time

from chaosali.core.fanout import fan_out
from chaosali.host.actions import cut_network, restore_network
from chaosali.host.ssh import SSHSettings, parse_hosts, run_script
from chaosali.lab.hosts import Lab


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skew", action="store_true", help="measure the skew of faults that start together")
    args = parser.parse_args()

    lab = Lab(name="csbench", subnet="10.215.0.0/24")
    lab.up(hosts=16)
    try:
        variables = json.loads(lab.vars_path.read_text())
        chaos = {"configuration": variables["configuration"], "secrets": variables["secrets"]["ssh"]}
        addresses = [host.address for host in lab.hosts]
        if args.skew:
            skews = {"start_together": [], "plain fan-out": []}
            for _ in range(args.rounds):
                skews["start_together"].append(skew(addresses, chaos, 2.0))
                skews["plain fan-out"].append(skew(addresses, chaos, 0))
            for name, values in skews.items():
                print(f"{name:>14}: skew across 16 hosts median {statistics.median(values) * 1000:6.1f} ms, "
                      f"max {max(values) * 1000:6.1f} ms over {args.rounds} rounds"
                      + ("  (aim <= 50 ms)" if name == "start_together" else ""))
            return
        timings: dict[str, list[float]] = {
            "parallel 1": [], "parallel 16": [], "loop 1": [], "loop 16": [], "ssh only 1": [], "ssh only 16": [],
        }
        for _ in range(args.rounds):  # interleaved, so that machine noise hits every variant alike
            timings["parallel 1"].append(inject_and_restore(addresses[:1], chaos))
            timings["parallel 16"].append(inject_and_restore(addresses, chaos))
            timings["loop 1"].append(inject_and_restore(addresses[:1], chaos))
            timings["loop 16"].append(sum(inject_and_restore([a], chaos) for a in addresses))
            timings["ssh only 1"].append(ssh_only(addresses[:1], chaos))
            timings["ssh only 16"].append(ssh_only(addresses, chaos))
        median = {name: statistics.median(values) for name, values in timings.items()}
        for name, value in median.items():
            print(f"{name:>12}: median {value * 1000:7.0f} ms over {args.rounds} rounds")
        print(f"parallel fan-out  t(16)/t(1) = {median['parallel 16'] / median['parallel 1']:.2f}  (aim <= 1.5)")
        print(f"sequential loop   t(16)/t(1) = {median['loop 16'] / median['loop 1']:.2f}  (baseline)")
        print(f"ssh sessions only t(16)/t(1) = {median['ssh only 16'] / median['ssh only 1']:.2f}  (floor in this lab)")
    finally:
        lab.down()


if __name__ == "__main__":
    main()
