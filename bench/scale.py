"""Benchmark: master-host resolution and pod reads on a cluster with many nodes and pods.

Fills a lab cluster with --nodes Node objects and --pods Pod objects (plain API objects bound to
those nodes), then measures, side by side in one run:

1. master-host resolution: chaosali's `master_hosts` (label and field selectors, names) against a
   naive baseline that lists every node and every pod and filters them; time, API requests and
   response bytes of each, and the ratios;
2. reading 1,000 pods by label selector: chaosali's `get` against chaostoolkit-kubernetes'
   `count_pods` (its pod probes list the same pods), median time over --rounds rounds, and the ratio.

Needs root: brings up its own lab cluster (csscale, 10.220.0.0/24; with --quick
csqscale, 10.234.0.0/24; about a minute to fill it at full size).

    python bench/scale.py [--nodes 1000] [--pods 10000] [--rounds 5]
    python bench/scale.py --quick       # 20 nodes, 200 pods, 1 round
"""

import argparse
import os
import statistics
import time

from chaosk8s.pod.probes import count_pods
from kubernetes import client
from kubernetes.config import kube_config

from chaosali.cluster.api import new_api_client
from chaosali.cluster.nodes import master_hosts
from chaosali.cluster.probes import get

from _cluster import NAMESPACE, Meter, fill, lab_cluster  # bench/_cluster.py, shared with bench/impact.py
from _cli import parse  # bench/_cli.py


def naive_master_hosts(configuration: dict) -> list[str]:
    with new_api_client(configuration) as api:
        core = client.CoreV1Api(api)
        nodes = core.list_node().items
        pods = core.list_pod_for_all_namespaces().items
    components = {"kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager"}
    hosts = {p.spec.node_name for p in pods if (p.metadata.labels or {}).get("component") in components}
    hosts |= {n.metadata.name for n in nodes if "node-role.kubernetes.io/control-plane" in (n.metadata.labels or {})}
    return sorted(hosts)


def measure(function, rounds: int) -> tuple[float, Meter]:
    times = []
    for _ in range(rounds):
        with Meter() as meter:
            started = time.perf_counter()
            function()
            times.append(time.perf_counter() - started)
    return statistics.median(times), meter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parse(parser, {"nodes": 20, "pods": 200, "rounds": 1},
                 labs=({"name": "csscale", "subnet": "10.220.0.0/24"},
                       {"name": "csqscale", "subnet": "10.234.0.0/24"}))

    with lab_cluster(**args.lab) as configuration:
        started = time.perf_counter()
        fill(configuration, args.nodes, args.pods)
        print(f"filled {args.nodes} nodes and {args.pods} pods in {time.perf_counter() - started:.0f} s")

        ours = [h["node"] for h in master_hosts(configuration)]
        assert ours == naive_master_hosts(configuration), "the two resolutions disagree"
        fast, fast_meter = measure(lambda: master_hosts(configuration), args.rounds)
        slow, slow_meter = measure(lambda: naive_master_hosts(configuration), args.rounds)
        print(f"master hosts, chaosali: {fast * 1000:8.1f} ms, {fast_meter.requests} requests, "
              f"{fast_meter.bytes / 1024:8.1f} KiB")
        print(f"master hosts, naive   : {slow * 1000:8.1f} ms, {slow_meter.requests} requests, "
              f"{slow_meter.bytes / 1024:8.1f} KiB")
        print(f"naive / chaosali: time x{slow / fast:.1f}, bytes x{slow_meter.bytes / max(fast_meter.bytes, 1):.0f}")

        selector = "app=bulk,shard=3"  # a tenth of the pods: 1,000 by default
        # chaostoolkit-kubernetes reads KUBECONFIG, through a default the kubernetes package fixed at import
        os.environ["KUBECONFIG"] = kube_config.KUBE_CONFIG_DEFAULT_LOCATION = configuration["kubeconfig_path"]
        counted = count_pods(label_selector=selector, ns=NAMESPACE)
        listed = len(get("Pod", namespace=NAMESPACE, label_selector=selector, configuration=configuration)["items"])
        assert counted == listed, f"{counted} != {listed}"
        ours_get, _ = measure(lambda: get("Pod", namespace=NAMESPACE, label_selector=selector,
                                          configuration=configuration), args.rounds)
        theirs, _ = measure(lambda: count_pods(label_selector=selector, ns=NAMESPACE), args.rounds)
        print(f"get {listed} pods by selector, chaosali get: {ours_get * 1000:8.1f} ms; "
              f"chaostoolkit-kubernetes count_pods: {theirs * 1000:8.1f} ms; ratio x{theirs / ours_get:.2f}")


if __name__ == "__main__":
    main()
