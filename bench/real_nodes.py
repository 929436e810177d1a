"""Benchmark: the lab with real worker nodes (kubelet, containerd, kube-proxy) against kwok workers.

Side by side in one run, each --runs times (binaries already built): the time of a warm
`lab up` (hosts, control plane, nodes Ready, the demo workload available) with kwok workers and
with real ones, and the memory (proportional set size) of everything a real worker runs: its
kubelet, containerd, kube-proxy, shims and containers. Needs root: brings up its own lab.

    python bench/real_nodes.py [--runs 3] [--quick]
"""

import argparse
import glob
import statistics
import subprocess
import time
from pathlib import Path

from chaosali.lab.cluster import Cluster
from chaosali.lab.hosts import Lab

from _cli import parse  # bench/_cli.py


def lab_up(kind: str, lab: Lab) -> tuple[float, dict[str, float]]:
    """Seconds of a warm ``lab up`` with ``kind`` workers, and the MiB each worker's processes use."""
    lab.down()
    try:
        started = time.monotonic()
        Cluster(lab, progress=lambda message: None, nodes=kind).up(masters=1, workers=2)
        seconds = time.monotonic() - started
        return seconds, {host.name: _pss_mib(_worker_pids(lab, host.namespace))
                         for host in lab.hosts if host.role == "worker"}
    finally:
        lab.down()


def _worker_pids(lab: Lab, namespace: str) -> set[str]:
    """The host's processes (its network namespace) and its containers (its kubelet's cgroups)."""
    pids = set(subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True).stdout.split())
    for procs in glob.glob(f"/sys/fs/cgroup/pids/{namespace}/**/cgroup.procs", recursive=True):
        pids.update(Path(procs).read_text().split())
    return pids


def _pss_mib(pids: set[str]) -> float:
    total = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parse(parser, {"runs": 1}, labs=({"name": "bnodes", "subnet": "10.228.0.0/24"},
                                            {"name": "csqnodes", "subnet": "10.237.0.0/24"}))
    results: dict[str, list[tuple[float, dict[str, float]]]] = {"kwok": [], "real": []}
    for _ in range(args.runs):
        for kind in results:  # interleaved, so that both see the same machine load
            results[kind].append(lab_up(kind, Lab(**args.lab)))
    medians = {}
    for kind, runs in results.items():
        medians[kind] = statistics.median(seconds for seconds, _ in runs)
        memory = statistics.median(mib for _, per_worker in runs for mib in per_worker.values())
        print(f"{kind:5} workers: lab up {medians[kind]:5.1f} s (median of {len(runs)}: "
              f"{', '.join(f'{s:.1f}' for s, _ in runs)}); memory per worker {memory:6.1f} MiB")
    print(f"real / kwok lab up: {medians['real'] / medians['kwok']:.2f}x")


if __name__ == "__main__":
    main()
