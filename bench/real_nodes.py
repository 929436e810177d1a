"""Benchmark: the lab with real worker nodes (kubelet, containerd, kube-proxy) against kwok workers.

Side by side in one run, each --runs times (binaries already built): the time of a warm
`lab up` (hosts, control plane, nodes Ready, the demo workload available) with kwok workers and
with real ones, and the memory (proportional set size) of everything a real worker runs: its
kubelet, containerd, kube-proxy, shims and containers. In each lab with real workers, the web
latency (p95 of the impact recorder's samples, 10 a second) of each replica before and during a CPU
stress (four busy loops) of the worker that runs the first one, each --stress-seconds long: each
replica is reached through its own worker's NodePort of the lab's ``web-local`` Service
(externalTrafficPolicy Local), so that kube-proxy sends no request to the other. Each worker has a CPU of its own (hosts.cpus_for), so
the stressed replica slows and the other should not: the ratio of the two p95 ratios (stressed /
other) is printed per run, and its median. Needs root: brings up its own lab.

    python bench/real_nodes.py [--runs 3] [--stress-seconds 20] [--quick]
"""

import argparse
import glob
import json
import statistics
import subprocess
import time
from pathlib import Path

from kubernetes import client

from chaosali.cluster.api import new_api_client
from chaosali.core.http import check
from chaosali.host.actions import restore_faults, stress_cpu
from chaosali.impact.measures import http_between
from chaosali.impact.recorder import HttpTarget, Recorder, Scope
from chaosali.lab import nodes
from chaosali.lab.cluster import DEMO_NAMESPACE, Cluster
from chaosali.lab.hosts import Lab

from _cli import parse  # bench/_cli.py

LOOPS = 4  # the stress's busy loops, as node-high-load's load_workers



def lab_up(kind: str, lab: Lab, stress_seconds: float) -> tuple[float, dict[str, float], dict | None]:
    """Seconds of a warm ``lab up`` with ``kind`` workers, the MiB each worker's processes use and,
    with real workers, the web latency before and during a CPU stress (see :func:`stress_latency`)."""
    lab.down()
    try:
        started = time.monotonic()
        cluster = Cluster(lab, progress=lambda message: None, nodes=kind)
        cluster.up(masters=1, workers=2)
        seconds = time.monotonic() - started
        memory = {host.name: _pss_mib(_worker_pids(lab, host.namespace)) for host in lab.hosts if host.role == "worker"}
        return seconds, memory, stress_latency(cluster, stress_seconds) if kind == "real" else None
    finally:
        lab.down()


def stress_latency(cluster: Cluster, seconds: float) -> dict:
    """The p95 latency (ms) of each web replica, by the node it runs on, ``before`` and ``during`` a
    stress (:data:`LOOPS` busy loops) of the node that runs the first replica (``stressed``)."""
    api = new_api_client({"kubeconfig_path": str(cluster.admin_kubeconfig)})
    try:
        core = client.CoreV1Api(api)
        replicas = [p.spec.node_name for p in core.list_namespaced_pod(DEMO_NAMESPACE, label_selector="app=web").items]
    finally:
        api.close()
    hosts = {h.name: h for h in cluster.lab.hosts}
    targets = tuple(HttpTarget(node, *check(f"http://{hosts[node].address}:{nodes.WEB_LOCAL_NODE_PORT}/", timeout=2),
                               rate=10)
                    for node in sorted(set(replicas)))
    recorder = Recorder(lambda: new_api_client({"kubeconfig_path": str(cluster.admin_kubeconfig)}),
                        Scope((DEMO_NAMESPACE,)), http_targets=targets)
    variables = json.loads(cluster.lab.vars_path.read_text())
    access = {"configuration": variables["configuration"], "secrets": variables["secrets"]["ssh"]}
    time.sleep(2)  # kube-proxy's rules for web-local, made as the lab came up
    recorder.start()
    try:
        started = recorder.recording()
        time.sleep(seconds)
        before = recorder.recording()
        # four busy loops on the worker's CPU: one per CPU leaves the replica its turn at once
        stress_cpu([hosts[replicas[0]].address], duration=seconds + 5, workers=LOOPS, **access)
        time.sleep(seconds)
        during = recorder.recording()
    finally:
        recorder.stop()
        restore_faults([hosts[replicas[0]].address], **access)
    phases = {"before": http_between(started, before), "during": http_between(before, during)}
    return {"stressed": replicas[0], **{phase: {node: {"p95_ms": round(1000 * m["p95"], 2), "samples": m["samples"],
                                                       "availability": m["availability"]}
                                                for node, m in measured.items()} for phase, measured in phases.items()}}


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
    parser.add_argument("--stress-seconds", type=float, default=20)
    args = parse(parser, {"runs": 1, "stress_seconds": 2}, labs=({"name": "bnodes", "subnet": "10.228.0.0/24"},
                                            {"name": "csqnodes", "subnet": "10.237.0.0/24"}))
    results: dict[str, list[tuple[float, dict[str, float], dict | None]]] = {"kwok": [], "real": []}
    for _ in range(args.runs):
        for kind in results:  # interleaved, so that both see the same machine load
            results[kind].append(lab_up(kind, Lab(**args.lab), args.stress_seconds))
    medians = {}
    for kind, runs in results.items():
        medians[kind] = statistics.median(seconds for seconds, _, _ in runs)
        memory = statistics.median(mib for _, per_worker, _ in runs for mib in per_worker.values())
        print(f"{kind:5} workers: lab up {medians[kind]:5.1f} s (median of {len(runs)}: "
              f"{', '.join(f'{s:.1f}' for s, _, _ in runs)}); memory per worker {memory:6.1f} MiB")
    print(f"real / kwok lab up: {medians['real'] / medians['kwok']:.2f}x")
    ratios = []
    for _, _, stress in results["real"]:
        print(f"CPU stress of {stress['stressed']} ({args.stress_seconds:g} s each, {LOOPS} busy loops), web p95 before -> during: "
              + "; ".join(f"replica on {node}{' (stressed)' if node == stress['stressed'] else ''} "
                          f"{stress['before'][node]['p95_ms']} -> {stress['during'][node]['p95_ms']} ms "
                          f"({stress['during'][node]['p95_ms'] / stress['before'][node]['p95_ms']:.2f}x, "
                          f"{stress['during'][node]['availability']}% of {stress['during'][node]['samples']} answered)"
                          for node in stress["before"]))
        slowed = {node: stress["during"][node]["p95_ms"] / stress["before"][node]["p95_ms"] for node in stress["before"]}
        other = next((node for node in slowed if node != stress["stressed"]), None)
        if other is not None:  # both replicas on one worker: nothing to compare
            ratios.append(slowed[stress["stressed"]] / slowed[other])
    if ratios:
        print(f"stressed replica's p95 ratio / the other's: {', '.join(f'{r:.2f}' for r in ratios)} "
              f"(median {statistics.median(ratios):.2f}; above 1: the stressed worker's replica slowed more)")


if __name__ == "__main__":
    main()
