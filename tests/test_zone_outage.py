"""Zone outage: the lab's workers are spread over two zones; experiments/zone-outage.json cuts every
node of one and the workload stays available from the other."""

from __future__ import annotations

from kubernetes import client

from chaosali.cluster.api import connect
from conftest import assert_plan_agrees, chaos_run, journal_of, passed, plan_of, spread_over_both_zones


def test_lab_workers_and_the_demo_are_spread_over_two_zones(kube):
    with connect(kube.admin) as cluster:
        core = client.CoreV1Api(cluster.client)
        zones = {n.metadata.name: n.metadata.labels.get("topology.kubernetes.io/zone")
                 for n in core.list_node().items}
        spread = client.AppsV1Api(cluster.client).read_namespaced_deployment("web", "demo") \
            .spec.template.spec.topology_spread_constraints
    assert zones["worker1"] == "zone-a" and zones["worker2"] == "zone-b" and zones["master1"] is None
    # where the pods are now depends on the drills before (a drain moves them): the spread is asked
    assert [c.topology_key for c in spread] == ["topology.kubernetes.io/zone"]


def test_zone_outage_drill_keeps_the_workload_available_from_the_other_zone(kube, tmp_path):
    spread_over_both_zones(kube)
    shortened = ("--var", "cut_seconds:int=40", "--var", "notready_seconds:int=28")
    planned, plan = plan_of(tmp_path, "zone-outage.json", [kube.lab.vars_path], *shortened)
    assert planned.returncode == 0, planned.stderr
    run = chaos_run(tmp_path, "zone-outage.json", [kube.lab.vars_path], *shortened)
    journal = journal_of(run, tmp_path)
    assert passed(journal)
    assert_plan_agrees(plan, journal)
    out = {r["activity"]["name"]: r["output"] for r in journal["run"]}
    assert [h["name"] for h in out["cut-the-zone"]["targets"]["hosts"]] == ["worker1"]
    assert out["zone-nodes-ready-during-the-outage"] is False
    assert out["other-zone-nodes-ready-during-the-outage"] is True
    assert out["workload-available-from-the-other-zone"]["status"]["availableReplicas"] >= 1
    back = out["zone-nodes-back"]
    assert back["back_at"] and back["last"] is True
    print(f"\nzone-a cut for 40 s: its nodes were back Ready at {back['back_at']}")
