"""Benchmark: what the lab's monitoring costs, measured side by side in one run.

Brings up a lab cluster (1 master, 2 workers) without monitoring, then the same with
``--monitoring`` (Prometheus, Alertmanager, node exporters), times each ``up`` (and ``down``),
then lets the monitored lab idle and reads the CPU seconds its monitoring processes used.
Prints the ratio of the two start-up times. Needs root: uses a lab of its own.

    python bench/monitoring.py [--idle 60] [--quick]
"""

import argparse
import os
import time
from pathlib import Path

from chaosali.lab.cluster import Cluster
from chaosali.lab.hosts import Lab

from _cli import parse  # bench/_cli.py

_MONITORING = ("prometheus", "prometheus-alertmanager", "prometheus-node-exporter", "prometheus-blackbox-exporter")


def timed_up(lab: Lab, monitored: bool) -> float:
    lab.down()  # whatever a killed run left behind
    started = time.monotonic()
    Cluster(lab).up(masters=1, workers=2, monitored=monitored)
    return time.monotonic() - started


def timed_down(lab: Lab) -> float:
    started = time.monotonic()
    lab.down()
    return time.monotonic() - started


def cpu_seconds(lab: Lab) -> float:
    """CPU seconds (user + system) used so far by the lab's monitoring processes: those named in
    _MONITORING whose command line names the lab's state directory or its addresses."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0.0
    marks = (f"/{lab.name}/", lab.subnet.rsplit(".", 1)[0] + ".")
    for process in Path("/proc").glob("[0-9]*"):
        try:
            argv = (process / "cmdline").read_bytes().decode().split("\0")
            fields = (process / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if os.path.basename(argv[0]) in _MONITORING and any(mark in " ".join(argv) for mark in marks):
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=float, default=60, help="seconds the monitored lab idles (default 60)")
    args = parse(parser, {"idle": 5}, labs=({"name": "csmonbench", "subnet": "10.245.0.0/24"},
                                            {"name": "csqmon", "subnet": "10.246.0.0/24"}))
    lab = Lab(**args.lab)
    try:
        plain = timed_up(lab, False)
        plain_down = timed_down(lab)
        monitored = timed_up(lab, True)
        before = cpu_seconds(lab)
        time.sleep(args.idle)
        used = cpu_seconds(lab) - before
    finally:
        monitored_down = timed_down(lab)
    print(f"lab up without monitoring: {plain:.1f} s (down {plain_down:.1f} s)")
    print(f"lab up with monitoring:    {monitored:.1f} s (down {monitored_down:.1f} s)")
    print(f"ratio with / without:      x{monitored / plain:.2f}")
    print(f"monitoring CPU while idle: {used:.1f} CPU-s in {args.idle:g} s ({100 * used / args.idle:.1f} % of a CPU)")


if __name__ == "__main__":
    main()
