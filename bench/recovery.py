"""Benchmark: how fast a cut master is healed, by a rollback and by its own dead-man timer.

1. restore: cut the master (SSH path kept), then time from the start of `restore_network` to the
   API answering /readyz again.
2. self-heal: a controller process cuts the master for DURATION seconds and is SIGKILLed once the
   API is down; time from the end of DURATION to the API answering again.

Prints the median and max of each over --runs runs. Needs root: brings up its own lab cluster
(csrecover, 10.222.0.0/24; with --quick csqrecover, 10.233.0.0/24).

    python bench/recovery.py [--runs 5] [--duration 4]
    python bench/recovery.py --quick    # 1 run, a 2 s cut
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

from chaosali.cluster.health import api_problem
from chaosali.core.waiting import wait_until
from chaosali.host.actions import cut_network, restore_network
from chaosali.lab.cluster import Cluster
from chaosali.lab.hosts import Lab

from _cli import parse  # bench/_cli.py

_CONTROLLER = """
import json, sys, time
from chaosali.host.actions import cut_network
chaos = json.loads(sys.argv[1])
cut_network({"masters": ["kube-apiserver"]}, duration=float(sys.argv[2]), **chaos)
print("cut", flush=True)
time.sleep(3600)
"""


def until(condition, timeout: float = 120) -> float:
    started = time.monotonic()
    held, _ = wait_until(condition, started + timeout, 0.02)
    if not held:
        raise TimeoutError("condition not met")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=4)
    args = parse(parser, {"runs": 1, "duration": 2},
                 labs=({"name": "csrecover", "subnet": "10.222.0.0/24"},
                       {"name": "csqrecover", "subnet": "10.233.0.0/24"}))

    lab = Lab(**args.lab)
    lab.down()  # whatever a killed run left behind
    try:
        Cluster(lab, nodes="kwok").up(masters=1, workers=1)
        variables = json.loads(lab.vars_path.read_text())
        chaos = {"configuration": variables["configuration"], "secrets": variables["secrets"]["ssh"]}
        api_up = lambda: api_problem(0.3, chaos["configuration"], None) is None  # noqa: E731
        restore, heal = [], []
        for _ in range(args.runs):
            cut_network({"masters": ["kube-apiserver"]}, duration=60, **chaos)
            until(lambda: not api_up())
            started = time.monotonic()
            restore_network({"masters": ["kube-apiserver"]}, **chaos)
            until(api_up)
            restore.append(time.monotonic() - started)

            controller = subprocess.Popen(
                [sys.executable, "-c", _CONTROLLER, json.dumps(chaos), str(args.duration)],
                stdout=subprocess.PIPE, text=True, start_new_session=True,
            )
            controller.stdout.readline()
            cut_at = time.monotonic()  # within the SSH round trip of the real injection
            until(lambda: not api_up())
            os.killpg(controller.pid, signal.SIGKILL)
            controller.wait()
            until(api_up)
            heal.append(time.monotonic() - cut_at - args.duration)
        for name, values in (("restore -> API answers", restore), ("end of duration -> API answers", heal)):
            print(f"{name:32}: median {statistics.median(values):6.2f} s, max {max(values):6.2f} s "
                  f"over {len(values)} runs")
    finally:
        lab.down()


if __name__ == "__main__":
    main()
