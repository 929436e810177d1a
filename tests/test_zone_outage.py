"""Zone outage: the lab's workers are spread over two zones. The drill itself
(experiments/zone-outage.json) runs on the monitored lab, where its alerts are judged too
(tests/test_monitoring.py)."""

from __future__ import annotations

from kubernetes import client

from chaosali.cluster.api import connect


def test_lab_workers_and_the_demo_are_spread_over_two_zones(kube):
    with connect(kube.admin) as cluster:
        core = client.CoreV1Api(cluster.client)
        zones = {n.metadata.name: n.metadata.labels.get("topology.kubernetes.io/zone")
                 for n in core.list_node().items}
        spread = client.AppsV1Api(cluster.client).read_namespaced_deployment("web", "demo") \
            .spec.template.spec.topology_spread_constraints
    assert zones["worker1"] == "zone-a" and zones["worker2"] == "zone-b" and zones["master1"] is None
    # where the pods are now depends on the drills before (a drain moves them): the spread is required,
    # per node and per zone, and each drill puts it back first (tests/test_spread.py)
    assert [(c.topology_key, c.when_unsatisfiable) for c in spread] == [
        ("kubernetes.io/hostname", "DoNotSchedule"), ("topology.kubernetes.io/zone", "DoNotSchedule")]

