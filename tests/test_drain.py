"""Pod migration (drain_node, uncordon_node): refusals before the cluster is asked, and a real drain
of a lab worker with a PodDisruptionBudget that blocks one eviction."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import pytest
from kubernetes import client

from chaosali.cluster.actions import drain_node, uncordon_node
from chaosali.cluster.api import connect
from chaosali.core import extensions, ledger
from chaosali.core.errors import InvalidArgument
from chaosali.core.markers import CORDONED_BY_ANNOTATION
from chaosali.report.figures import read_run
from chaosali.report.recovery import RECOVERED
from chaosali.report.render import render
from chaosali.report.words import run_verdict
from helpers import REPO, chaos_run, journal_of, passed, wait_until, workload_container

NAMESPACE = "drain-test"
WORKER = {"nodes": "kubernetes.io/hostname=worker1"}


@pytest.mark.parametrize("targets, timeout, problem", [
    (["10.0.0.5"], 5, "must be a cluster query"),
    (WORKER, "nan", "timeout"),
    (WORKER, 0, "timeout"),
])
def test_drain_refuses_bad_input_before_the_cluster(targets, timeout, problem):
    # no kubeconfig is configured: reaching the cluster would fail otherwise
    with pytest.raises(InvalidArgument, match=problem):
        drain_node(targets, timeout=timeout, configuration={"kubeconfig_path": "/nonexistent"})


@pytest.fixture
def cluster(kube) -> Iterator[tuple[dict, client.CoreV1Api]]:
    configuration = kube.admin
    with connect(configuration) as connection:
        core = client.CoreV1Api(connection.client)
        yield configuration, core, connection
        core.delete_namespace(NAMESPACE)
        assert wait_until(lambda: NAMESPACE not in [n.metadata.name for n in core.list_namespace().items], 60), \
            f"namespace {NAMESPACE} was not deleted"
        for name in ("worker1", "worker2"):
            core.patch_node(name, {"spec": {"unschedulable": False},
                                   "metadata": {"annotations": {CORDONED_BY_ANNOTATION: None}}})


def pod(api: client.ApiClient, name: str, app: str) -> dict:
    return {"metadata": {"name": name, "labels": {"app": app}},
            "spec": {"nodeName": "worker1", "containers": [workload_container(api, "c")]}}


def test_drain_evicts_honours_a_budget_skips_daemonsets_then_uncordon_rolls_back(cluster):
    configuration, core, connection = cluster
    policy, apps = client.PolicyV1Api(connection.client), client.AppsV1Api(connection.client)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    for name, app in (("free", "free"), ("guarded-1", "guarded"), ("guarded-2", "guarded")):
        core.create_namespaced_pod(NAMESPACE, pod(connection.client, name, app))
    policy.create_namespaced_pod_disruption_budget(NAMESPACE, {
        "metadata": {"name": "guarded"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}})
    apps.create_namespaced_daemon_set(NAMESPACE, {
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {
            "metadata": {"labels": {"app": "agent"}},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": "worker1"},
                     "containers": [workload_container(connection.client, "c")]}}}})

    def ready() -> bool:
        pods = core.list_namespaced_pod(NAMESPACE).items
        budget = policy.read_namespaced_pod_disruption_budget("guarded", NAMESPACE)
        return len(pods) == 4 and all(p.status.phase == "Running" for p in pods) and \
            (budget.status.disruptions_allowed or 0) == 1
    assert wait_until(ready, 60, step=0.5) is not None, "the test pods or the budget did not settle"

    drained = drain_node(WORKER, timeout=4, configuration=configuration)
    assert drained["nodes"] == ["worker1"] and drained["drain_id"].startswith("chaosali-")
    ours = lambda entries: sorted(e["pod"] for e in entries if e["pod"].startswith(f"{NAMESPACE}/"))  # noqa: E731
    evicted, blocked = ours(drained["evicted"]), ours(drained["blocked"])
    assert f"{NAMESPACE}/free" in evicted and len(evicted) == 2 and len(blocked) == 1, drained
    assert blocked[0].startswith(f"{NAMESPACE}/guarded-") and evicted[1].startswith(f"{NAMESPACE}/guarded-")
    assert "disruption budget" in drained["blocked"][0]["why"].lower(), drained["blocked"]
    (skipped,) = [e for e in drained["skipped"] if e["pod"].startswith(f"{NAMESPACE}/agent-")]
    assert skipped["why"].startswith("DaemonSet pod")
    assert core.read_node("worker1").spec.unschedulable is True

    # an operator's cordon is not ours to lift
    core.patch_node("worker2", {"spec": {"unschedulable": True}})
    assert uncordon_node(WORKER, configuration=configuration) == {"uncordoned": ["worker1"]}
    node = core.read_node("worker1")
    assert not node.spec.unschedulable and CORDONED_BY_ANNOTATION not in (node.metadata.annotations or {})
    assert uncordon_node(WORKER, configuration=configuration) == {"uncordoned": []}
    assert uncordon_node(configuration=configuration) == {"uncordoned": []}
    assert core.read_node("worker2").spec.unschedulable is True


def test_node_drain_drill_migrates_the_workload_and_uncordons(forward):
    journal = forward["node-drain.json"].journal  # run on the monitored lab, in its sequence (conftest.py)
    assert passed(journal)
    drained = next(r["output"] for r in journal["run"] if r["activity"]["name"] == "drain-a-node")
    assert len(drained["nodes"]) == 1 and drained["blocked"] == []
    assert journal["rollbacks"][0]["output"] == {"uncordoned": drained["nodes"]}
    assert read_run(journal).recovery.exceeded is False  # judged from what recovered, in time
    # its record: ended at the last eviction, closed by the uncordon, and no ledger left on disk
    [entry] = extensions.entries(journal, extensions.LEDGER)
    [drain] = [ledger.Fault.from_json(record) for record in entry["faults"]]
    assert drain is not None and drain.kind == "drain" and drain.state == "closed"
    assert drain.ended is not None and drain.closed is not None and drain.ended < drain.closed
    assert not list((Path(os.environ["CHAOSALI_STATE_DIR"]) / "ledger").glob(f"{drain.run}.*"))
    # recovery is measured from the drain's end, and meets the experiment's max_recovery_seconds
    [measures] = [e["measures"] for e in extensions.entries(journal, extensions.IMPACT)]
    assert measures["recovery_seconds"] is not None and measures["recovery_seconds"] <= 30


def test_node_drain_of_both_replicas_exceeds_its_fmea_and_says_recovered(kube, tmp_path):
    """A workload that is not shaped as the FMEA assumes: both web replicas on the drained node, no
    disruption budget, and a drill without the spread control that would put them back. The
    workload is down until they run elsewhere, worse than the FMEA's partial impact (the run
    deviates, rightly), and it comes back: EXCEEDED for the impact, and "recovered" in time."""
    experiment = json.loads((REPO / "experiments" / "node-drain.json").read_text())
    experiment["controls"] = [c for c in experiment["controls"] if c["name"] != "spread"]
    (tmp_path / "unspread.json").write_text(json.dumps(experiment))
    with connect(kube.admin) as connection:
        core, policy = client.CoreV1Api(connection.client), client.PolicyV1Api(connection.client)
        budget = connection.client.sanitize_for_serialization(policy.read_namespaced_pod_disruption_budget("web", "demo"))

        def web_nodes() -> list[str]:
            return [p.spec.node_name for p in core.list_namespaced_pod("demo", label_selector="app=web").items
                    if not p.metadata.deletion_timestamp and p.status.phase == "Running"
                    and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
        policy.delete_namespaced_pod_disruption_budget("web", "demo")
        try:
            core.patch_node("worker2", {"spec": {"unschedulable": True}})
            try:
                core.delete_collection_namespaced_pod("demo", label_selector="app=web")
                assert wait_until(lambda: web_nodes() == ["worker1", "worker1"], 60, step=1), web_nodes()
            finally:
                core.patch_node("worker2", {"spec": {"unschedulable": False}})
            journal = journal_of(chaos_run(tmp_path, str(tmp_path / "unspread.json"), [kube.lab.vars_path],
                                           "--var", "drain_timeout:int=30"), tmp_path)
        finally:
            policy.create_namespaced_pod_disruption_budget("demo", {"metadata": {"name": "web"}, "spec": budget["spec"]})
    after = {p["activity"]["name"]: p["tolerance_met"] for p in journal["steady_states"]["after"]["probes"]}
    assert journal["deviated"] is True and after.pop("impact-within-fmea") is False and all(after.values()), after
    report = read_run(journal)
    assert report.impact_exceeded is True and run_verdict(report) == "EXCEEDED"
    recovery = report.recovery
    assert recovery.state == RECOVERED and recovery.exceeded is False, recovery
    assert "not recovered" not in render([report], "text")
    print(f"\nnode-drain of both replicas: impact {report.impact_level}, recovered in {recovery.measured} s "
          f"({recovery.started_by} to {recovery.healthy_by})")
