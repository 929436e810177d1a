"""The workload's spread (chaosali.cluster.spread, the ``spread`` control): how a Deployment's pods
stand against its topology spread constraints (pure), and a rollout restart that puts the lab's demo
back, one replica per node and zone, after a disruption gathered it on one node."""

from __future__ import annotations

import pytest
from chaoslib.exceptions import InterruptExecution
from kubernetes import client

from chaosali.cluster.api import connect
from chaosali.cluster.spread import placement, respread
from chaosali.lab.cluster import spread_constraints
from chaosali.plan.render import render
from helpers import plan_of, wait_until

LABELS = {"app": "web"}


def node(name: str, zone: str | None, ready: bool = True, **spec: object) -> dict:
    labels = {"kubernetes.io/hostname": name, **({"topology.kubernetes.io/zone": zone} if zone else {})}
    return {"metadata": {"name": name, "labels": labels}, "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}


def pod(name: str, on: str, phase: str = "Running", deleting: bool = False) -> dict:
    return {"metadata": {"name": name, **({"deletionTimestamp": "2026-12-07T22:00:00Z"} if deleting else {})},
            "spec": {"nodeName": on}, "status": {"phase": phase}}


def deployment(**template: object) -> dict:
    return {"spec": {"template": {"spec": {"topologySpreadConstraints": spread_constraints(LABELS), **template}}}}


MASTER = node("master1", None, taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}])
NODES = [MASTER, node("worker1", "zone-a"), node("worker2", "zone-b")]


def test_both_replicas_on_one_node_break_the_spread_per_node_and_per_zone():
    placed = placement(deployment(), [pod("a", "worker1"), pod("b", "worker1")], NODES)
    assert placed["holds"] is False and placed["misplaced"] == []
    assert [(c["topology_key"], c["domains"], c["skew"], c["holds"]) for c in placed["constraints"]] == [
        ("kubernetes.io/hostname", {"worker1": 2, "worker2": 0}, 2, False),
        ("topology.kubernetes.io/zone", {"zone-a": 2, "zone-b": 0}, 2, False)]


def test_one_replica_per_worker_holds_and_the_tainted_master_is_no_domain():
    placed = placement(deployment(), [pod("a", "worker1"), pod("b", "worker2"), pod("c", "worker2", deleting=True),
                                      pod("d", "worker2", phase="Succeeded")], NODES)
    assert placed["holds"] is True
    assert placed["constraints"][0]["domains"] == {"worker1": 1, "worker2": 1}
    # tolerating the master's taint makes it a node the spread counts
    tolerant = placement(deployment(tolerations=[{"operator": "Exists"}]), [pod("a", "worker1"), pod("b", "worker2")],
                         NODES)
    assert tolerant["constraints"][0]["domains"] == {"master1": 0, "worker1": 1, "worker2": 1}
    assert tolerant["holds"] is True  # skew 1: within maxSkew


@pytest.mark.parametrize("worker2", [node("worker2", "zone-b", ready=False), node("worker2", "zone-b", unschedulable=True),
                                     node("worker2", "zone-b", taints=[{"key": "x", "value": "y", "effect": "NoExecute"}])])
def test_a_node_no_new_pod_could_go_to_is_no_domain_and_a_pod_on_it_is_misplaced(worker2):
    nodes = [MASTER, node("worker1", "zone-a"), worker2]
    # gathered on the one node that takes pods: nothing a rollout could do better
    assert placement(deployment(), [pod("a", "worker1"), pod("b", "worker1")], nodes)["holds"] is True
    placed = placement(deployment(), [pod("a", "worker1"), pod("b", "worker2")], nodes)
    assert placed["holds"] is False and placed["misplaced"] == ["b"]


def test_a_node_selector_leaves_out_the_nodes_it_does_not_select():
    placed = placement(deployment(nodeSelector={"topology.kubernetes.io/zone": "zone-a"}),
                       [pod("a", "worker1"), pod("b", "worker1")], NODES)
    assert placed["holds"] is True and placed["constraints"][0]["domains"] == {"worker1": 2}


def test_the_control_refuses_a_missing_or_malformed_workload_before_any_client():
    from chaosali.spread.controls import before_experiment_control, validate_control

    from chaoslib.exceptions import InvalidControl
    with pytest.raises(InvalidControl, match="name"):
        validate_control({"name": "spread", "provider": {"type": "python", "module": "chaosali.spread.controls",
                                                           "arguments": {"namespace": "demo"}}})
    with pytest.raises(InterruptExecution, match="spread control: .*namespace"):
        before_experiment_control({}, namespace="Not_A_Name", name="web", configuration={"kubeconfig_path": "/nonexistent"})


def test_a_rollout_restart_spreads_the_demo_again_after_a_disruption_gathered_it(kube, tmp_path):
    """The lab's demo gathered on worker1 (worker2 cordoned while its pods were made again, as a drain
    of worker2 leaves them): the scheduler never moves them back; ``chaosali plan`` says that the
    drill's spread control will move them (the replicas it sees on the targets are not the run's);
    the restart the control makes puts one replica on each worker, one per zone, and a placement
    that holds is left alone."""
    with connect(kube.admin) as cluster:
        core = client.CoreV1Api(cluster.client)

        def ready_on() -> list[str]:
            return sorted(p.spec.node_name for p in core.list_namespaced_pod("demo", label_selector="app=web").items
                          if not p.metadata.deletion_timestamp
                          and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []))
        core.patch_node("worker2", {"spec": {"unschedulable": True}})
        try:
            core.delete_collection_namespaced_pod("demo", label_selector="app=web")
            assert wait_until(lambda: ready_on() == ["worker1", "worker1"], 60, step=1) is not None, ready_on()
        finally:
            core.patch_node("worker2", {"spec": {"unschedulable": False}})
        _, gathered = plan_of(tmp_path, "kubelet-misconfig.json", [kube.lab.vars_path])
        [moved] = gathered["spread"]
        assert moved["deployment"] == "demo/web" and moved["holds"] is False, moved
        assert moved["domains"]["kubernetes.io/hostname"] == {"worker1": 2, "worker2": 0}
        assert any("spread control restarts Deployment demo/web's rollout" in n for n in gathered["fmea"]["notes"])
        done = respread(cluster, "demo", "web", 120)
        assert done["before"]["holds"] is False and done["restarts"] == 1 and done["after"]["holds"] is True, done
        assert ready_on() == ["worker1", "worker2"]
        again = respread(cluster, "demo", "web", 120)
        assert again["restarts"] == 0 and again["before"]["holds"] is True
        _, spread = plan_of(tmp_path, "kubelet-misconfig.json", [kube.lab.vars_path])
        assert spread["spread"][0]["holds"] is True and not any("spread" in n for n in spread["fmea"]["notes"])
    assert "Deployment demo/web: NOT spread as its constraints want (kubernetes.io/hostname" in render(gathered)
    assert "Deployment demo/web: spread as its constraints want" in render(spread)
