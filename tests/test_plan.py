"""`chaosali plan`: what a drill would hit, resolved now by the run's own code, nothing injected.

The unit tests judge the plan's pure parts (caps, rendering, plan vs run); the lab tests make real
plans against the lab cluster and its hosts. That the hosts planned are the hosts hit is proven
where the drills run: test_drills (master-netcut, kubelet-misconfig), test_zone_outage and
test_chaos (random chaos with a seed).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from kubernetes import client

from chaosali.cli import main
from chaosali.cluster.api import connect
from chaosali.core.errors import InvalidArgument
from chaosali.host.ssh import Host, run_script
from chaosali.impact.recorder import Recorder, Scope
from chaosali.plan._exposure import _counts
from chaosali.plan.build import _caps, _radius
from chaosali.plan.render import render
from chaosali.report.planned import versus
from helpers import REPO, hidden_tc, markers, plan_of, settings, wait_until

WORKERS = {"nodes": "node-role.kubernetes.io/worker"}


def plan_with(**overrides: object) -> dict:
    """A plan as make_plan returns it: one cut of two workers, a budget with no room."""
    plan = {
        "experiment": "cut <the> workers", "made_at": "2026-01-01T00:00:00+00:00",
        "activities": [
            {"phase": "method", "name": "cut", "activity": "chaosali.host.actions.cut_network",
             "query": {"query": WORKERS, "why": "nodes matching 'node-role.kubernetes.io/worker': 2 of 2"},
             "hosts": [{"name": "worker1", "address": "10.0.0.2"}, {"name": "worker2", "address": "10.0.0.3"}]},
            {"phase": "method", "name": "watch", "activity": "chaosali.cluster.probes.watch_nodes"},
            {"phase": "rollback", "name": "heal", "activity": "chaosali.host.actions.restore_network",
             "hosts": [{"name": "worker1", "address": "10.0.0.2"}, {"name": "worker2", "address": "10.0.0.3"}]},
        ],
        "lock": None,
        "hosts": [{"name": "worker1", "address": "10.0.0.2", "activities": ["method cut"], "faults": ["cut_network"],
                   "preflight": {"ready": False, "faults": [{"fault": "cut_network", "ready": False,
                                                             "reason": "cut unavailable: no iptables"}]}},
                  {"name": "worker2", "address": "10.0.0.3", "activities": ["method cut"], "faults": ["cut_network"]}],
        "nodes": {"hit": ["worker1", "worker2"], "of": 3, "all": ["master1", "worker1", "worker2"]},
        "workloads": [{"workload": "Deployment demo/web", "kind": "Deployment", "namespace": "demo", "name": "web",
                       "ready": 2, "desired": 2, "touched": 2, "percent": 100.0,
                       "pods": [{"pod": "web-1", "node": "worker1", "ready": True},
                                {"pod": "web-2", "node": "worker2", "ready": True}]}],
        "budgets": [{"budget": "demo/web", "selector": "app=web", "allowed": 0, "touched": ["web-1", "web-2"],
                     "violated": True}],
        "fmea": {"expected": {"impact": "partial", "max_pods_lost": 0},
                 "predicted": {"pods_at_risk": 2, "workloads": "Deployment demo/web: 2 of 2", "namespaces": ["demo"]},
                 "notes": ["max_pods_lost 0, but the targets run 2 ready pod(s) (Deployment demo/web: 2 of 2)"]},
        "reasons": ["PDB violated: PodDisruptionBudget demo/web allows 0 more pod(s) lost now, ..."],
    }
    plan["blast_radius"] = _radius(plan, {"nodes": 1}, [])
    return {**plan, **overrides}


def test_a_cap_of_one_node_refuses_a_method_that_hits_two():
    reasons: list[str] = []
    radius = _radius(plan_with(), _caps({"extensions": [{"name": "chaosali", "max_blast_radius": {"nodes": 1}}]}),
                     reasons)
    assert radius["nodes"] == 2 and radius["node_percent"] == 66.7
    assert reasons == ["cap exceeded: the method hits nodes 2, more than max_blast_radius nodes 1"]
    reasons.clear()
    _radius(plan_with(), {"nodes": 2, "node_percent": 70, "replica_percent": 100, "hosts": 2}, reasons)
    assert reasons == []
    _radius(plan_with(), {"replica_percent": 50}, reasons)
    assert reasons == ["cap exceeded: the method hits replica percent 100 (Deployment demo/web), "
                       "more than max_blast_radius replica_percent 50"]


@pytest.mark.parametrize("caps, complaint", [
    ({"node": 1}, "give an object of hosts, nodes, node_percent, replica_percent"),
    ({"nodes": -1}, "nodes"),
    ({"node_percent": 120}, "node_percent"),
    ([1], "max_blast_radius [1]"),
])
def test_a_wrong_cap_is_refused_naming_it(caps, complaint):
    with pytest.raises(InvalidArgument, match="max_blast_radius") as refused:
        _caps({"extensions": [{"name": "chaosali", "max_blast_radius": caps}]})
    assert complaint in str(refused.value)


def squeezed(text: str) -> list[str]:
    """The lines of a text table, their columns one space apart."""
    return [" ".join(line.split()) for line in text.splitlines()]


def test_the_text_plan_shows_targets_budgets_radius_fmea_and_each_reason():
    lines = squeezed(render(plan_with()))
    for expected in (
        "method cut chaosali.host.actions.cut_network worker1 (10.0.0.2), worker2 (10.0.0.3) "
        "nodes matching 'node-role.kubernetes.io/worker': 2 of 2",
        "method watch chaosali.cluster.probes.watch_nodes - no targets",
        "worker1 10.0.0.2 cut_network FAIL: cut unavailable: no iptables",
        "worker2 10.0.0.3 cut_network not checked",
        "Deployment demo/web 2 of 2 (100 %) web-1 (worker1), web-2 (worker2)",
        "demo/web 0 web-1, web-2 VIOLATED",
        "nodes 2 of 3: worker1, worker2 1",
        "note: max_pods_lost 0, but the targets run 2 ready pod(s) (Deployment demo/web: 2 of 2)",
    ):
        assert expected in lines, expected
    assert lines[-1] == "REFUSED: PDB violated: PodDisruptionBudget demo/web allows 0 more pod(s) lost now, ..."


def test_the_markdown_plan_is_inert_and_the_json_plan_is_the_plan():
    markdown = render(plan_with(), "markdown")
    assert markdown.startswith("# Plan of 'cut \\<the\\> workers'")
    assert "| method | cut | chaosali.host.actions.cut\\_network |" in markdown
    assert "## Verdict" in markdown and "- REFUSED: PDB violated" in markdown
    assert json.loads(render(plan_with(), "json")) == json.loads(json.dumps(plan_with()))
    assert "the drill may run as planned" in render(plan_with(reasons=[]))


def test_plan_vs_run_compares_each_activity_s_hosts():
    journal = {
        "run": [{"activity": {"name": "cut"}, "status": "succeeded",
                 "output": {"hosts": [{"host": "worker2 (10.0.0.3)", "address": "10.0.0.3"},
                                      {"host": "worker1 (10.0.0.2)", "address": "10.0.0.2"}]}},
                {"activity": {"name": "watch"}, "status": "succeeded", "output": True}],
        "rollbacks": [{"activity": {"name": "heal"}, "status": "succeeded",
                       "output": {"restored": {"worker1 (10.0.0.2)": ["chaosali-1"]}}}],
    }
    rows = versus(plan_with(), journal)
    assert [(r["activity"], r["planned"], r["hit"], r["same"]) for r in rows] == [
        ("cut", ["10.0.0.2", "10.0.0.3"], ["10.0.0.2", "10.0.0.3"], True),
        ("heal", ["10.0.0.2", "10.0.0.3"], ["10.0.0.2"], False),  # worker2 moved out between plan and run
    ]
    random = {"run": [{"activity": {"name": "cut"}, "status": "succeeded",
                       "output": {"faults": [{"hosts": [{"address": "10.0.0.2"}]}, {"hosts": [{"address": "10.0.0.3"}]}]}}]}
    assert versus(plan_with(), random)[0]["same"] is True
    assert versus(plan_with(), {"run": []})[0]["status"] == "not run"


def test_report_with_a_plan_shows_plan_vs_run(tmp_path, capsys):
    journal = tmp_path / "journal.json"
    journal.write_text(json.dumps({"experiment": {"title": "cut"}, "status": "completed", "deviated": False,
                                   "run": [{"activity": {"name": "cut"}, "status": "succeeded",
                                            "output": {"hosts": [{"address": "10.0.0.2"}]}}]}))
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(plan_with()))
    assert main(["report", str(journal), "--plan", str(plan)]) == 0
    out = capsys.readouterr().out
    assert "PLAN VS RUN" in out and "method cut 10.0.0.2, 10.0.0.3 10.0.0.2 NO" in squeezed(out)
    (tmp_path / "not-a-plan.json").write_text("{}")
    assert main(["report", str(journal), "--plan", str(tmp_path / "not-a-plan.json")]) == 1
    assert "is not a plan: write one with `chaosali plan EXPERIMENT --format json" in capsys.readouterr().err


def test_plain_hosts_without_a_cluster_are_planned_offline(tmp_path, capsys):
    experiment = {
        "title": "stress two hosts", "description": "plain hosts, no cluster",
        "configuration": {"kubeconfig_path": str(tmp_path / "no-kubeconfig")},
        "method": [{"type": "action", "name": "stress", "provider": {
            "type": "python", "module": "chaosali.host.actions", "func": "stress_cpu",
            "arguments": {"targets": ["127.0.0.2", "127.0.0.3"], "duration": 5}}}],
    }
    path = tmp_path / "plain.json"
    path.write_text(json.dumps(experiment))
    assert main(["plan", str(path), "--no-preflight"]) == 0
    out = capsys.readouterr().out
    assert "method stress chaosali.host.actions.stress_cpu 127.0.0.2, 127.0.0.3 listed hosts" in squeezed(out)
    assert "unknown: " in out  # no cluster to read: said, not refused
    assert main(["plan", str(path), "--var-file", str(tmp_path / "missing.json")]) == 1
    assert f"var file {tmp_path / 'missing.json'} does not exist" in capsys.readouterr().err


# -- the lab ---------------------------------------------------------------------------------------------


def guarded_cut(tmp_path: Path, targets: dict, extension: dict, func: str = "cut_network",
                scope: str = "ssh", arguments: dict | None = None) -> Path:
    """An experiment that cuts ``targets``, guarded by the plan control, with ``extension``."""
    act = {"type": "python", "module": "chaosali.host.actions", "secrets": [scope]}
    experiment = {
        "title": "a guarded fault", "description": "the plan control refuses it before any fault",
        # a var file sets only the configuration an experiment declares
        "configuration": {"kubeconfig_path": "~/.kube/config", "ssh_known_hosts": "~/.ssh/known_hosts"},
        "secrets": {scope: {"user": "root"}},
        "method": [{"type": "action", "name": "fault", "provider": {
            **act, "func": func, "arguments": {"targets": targets, "duration": 20, **(arguments or {})}}}],
        "rollbacks": [{"type": "action", "name": "heal", "provider": {
            **act, "func": "restore_faults", "arguments": {"targets": targets}}}],
        "controls": [{"name": "plan", "provider": {"type": "python", "module": "chaosali.plan.controls"}}],
        "extensions": [{"name": "chaosali", **extension}],
    }
    path = tmp_path / "guarded.json"
    path.write_text(json.dumps(experiment))
    return path


def test_a_cap_of_one_node_refuses_the_plan_and_the_run_before_any_fault(kube, tmp_path):
    path = guarded_cut(tmp_path, WORKERS, {"max_blast_radius": {"nodes": 1}})
    done, plan = plan_of(tmp_path, str(path), [kube.lab.vars_path])
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "chaosali plan: cap exceeded: the method hits nodes 2, more than max_blast_radius nodes 1")
    assert plan["nodes"]["hit"] == ["worker1", "worker2"]

    run = subprocess.run(["chaos", "run", "--journal-path", str(tmp_path / "journal.json"), "--var-file",
                          str(kube.lab.vars_path), str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "interrupted" and journal["run"] == [], run.stdout + run.stderr
    assert "max_blast_radius nodes 1" in (tmp_path / "chaostoolkit.log").read_text()
    assert all(markers(kube.lab, host) == [] for host in kube.lab.hosts)


def web_pods_ready(kube) -> bool:
    with connect({"kubeconfig_path": str(kube.admin_kubeconfig)}) as cluster:
        web = client.AppsV1Api(cluster.client).read_namespaced_deployment("web", "demo")
    return (web.status.ready_replicas or 0) == web.spec.replicas


def test_a_budget_with_no_room_refuses_the_plan_naming_it(kube, tmp_path):
    assert wait_until(lambda: web_pods_ready(kube), 120, 1) is not None
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web-no-room"},
              "spec": {"minAvailable": "100%", "selector": {"matchLabels": {"app": "web"}}}}
    with connect({"kubeconfig_path": str(kube.admin_kubeconfig)}) as cluster:
        policy = client.PolicyV1Api(cluster.client)
        policy.create_namespaced_pod_disruption_budget("demo", budget)
        try:
            done, plan = plan_of(tmp_path, "kubelet-misconfig.json", [kube.lab.vars_path], "--no-preflight")
        finally:
            policy.delete_namespaced_pod_disruption_budget("web-no-room", "demo")
    assert done.returncode == 1, done.stdout
    refusals = [line for line in done.stderr.splitlines() if line.startswith("chaosali plan: ")]
    assert any(line.startswith("chaosali plan: PDB violated: PodDisruptionBudget demo/web-no-room allows 0 more pod(s)")
               for line in refusals), refusals
    [checked] = [budget for budget in plan["budgets"] if budget["budget"] == "demo/web-no-room"]
    assert checked["violated"] and checked["touched"] and checked["selector"] == "app=web"


def test_a_host_without_tc_fails_the_plan_naming_the_host_and_the_fault(kube, tmp_path):
    worker = next(host for host in kube.lab.hosts if host.role == "worker")
    path = guarded_cut(tmp_path, {"nodes": f"kubernetes.io/hostname={worker.name}"}, {}, func="limit_bandwidth",
                       scope="ssh_sudo")
    drop_in = hidden_tc(kube.lab, worker)
    try:
        done, plan = plan_of(tmp_path, str(path), [kube.lab.vars_path])
    finally:
        drop_in.unlink()
    assert done.returncode == 1
    assert (f"chaosali plan: preflight failed: host {worker.name} ({worker.address}): limit_bandwidth: "
            "bandwidth unavailable: tc not found on PATH") in done.stderr
    assert plan["hosts"][0]["preflight"]["ready"] is False


def everything(kube) -> dict:
    """What a plan must leave as it was: each host's markers, rules, qdiscs and kubelet files, and
    the resourceVersion of every object a drill could change (nodes: their spec and labels, as
    their status is the kubelet's heartbeat)."""
    look = ("ls -R /run/chaosali 2>/dev/null; iptables -S; iptables -t nat -S; tc qdisc show; "
            "md5sum /etc/kubernetes/kubelet.conf /var/lib/kubelet/config.yaml 2>/dev/null; true")
    state: dict = {host.name: run_script(Host(host.address), look, settings(kube.lab)) for host in kube.lab.hosts}
    with connect({"kubeconfig_path": str(kube.admin_kubeconfig)}) as cluster:
        core, apps = client.CoreV1Api(cluster.client), client.AppsV1Api(cluster.client)
        listings = {
            "pods": core.list_pod_for_all_namespaces, "configmaps": core.list_config_map_for_all_namespaces,
            "services": core.list_service_for_all_namespaces, "deployments": apps.list_deployment_for_all_namespaces,
            "replicasets": apps.list_replica_set_for_all_namespaces,
            "budgets": client.PolicyV1Api(cluster.client).list_pod_disruption_budget_for_all_namespaces,
            "leases": lambda: client.CoordinationV1Api(cluster.client).list_namespaced_lease("default"),
        }
        for kind, listing in listings.items():
            state[kind] = {(o.metadata.namespace, o.metadata.name): o.metadata.resource_version for o in listing().items}
        state["nodes"] = {n.metadata.name: (n.metadata.labels, n.metadata.annotations, n.spec.unschedulable,
                                            str(n.spec.taints)) for n in core.list_node().items}
    return state


def test_nothing_changes_anywhere_after_a_plan(kube, tmp_path):
    assert wait_until(lambda: web_pods_ready(kube), 120, 1) is not None
    experiment = json.loads((REPO / "experiments" / "random-chaos.json").read_text())
    # and the lock it would take: read, never taken
    experiment["controls"].insert(0, {"name": "lock", "provider": {"type": "python", "module": "chaosali.lock.controls"}})
    path = tmp_path / "random-chaos-locked.json"
    path.write_text(json.dumps(experiment))
    before = everything(kube)
    done, plan = plan_of(tmp_path, str(path), [kube.lab.vars_path])
    after = everything(kube)
    # its draw (seed 7) hits both workers, one replica of demo/web each, which web's budget refuses
    refusals = [line for line in done.stderr.splitlines() if line.startswith("chaosali plan: ")]
    assert done.returncode == 1 and len(refusals) == 1, done.stderr
    assert refusals[0].startswith("chaosali plan: PDB violated: PodDisruptionBudget demo/web allows 1 more pod(s)")
    assert plan["lock"]["held"] is False and plan["lock"]["lease"] == "default/chaosali-drill-lock"
    assert {h["name"] for h in plan["hosts"]} <= {"worker1", "worker2"}
    assert all(h["preflight"]["ready"] for h in plan["hosts"])
    for key in before:
        assert after[key] == before[key], key


def test_the_planner_and_the_impact_recorder_read_a_workload_s_replicas_alike():
    """The planner read ``spec.replicas or 0``, the recorder ``get("replicas", 1)``: a Deployment
    whose replicas are unset (the API's default is 1) was 0 desired in the plan and 1 in the run."""
    serialize = client.ApiClient().sanitize_for_serialization
    template = {"selector": client.V1LabelSelector(), "template": client.V1PodTemplateSpec()}
    meta = client.V1ObjectMeta(name="web", namespace="demo")
    for kind, workload, expected in [
        ("Deployment", client.V1Deployment(metadata=meta, spec=client.V1DeploymentSpec(**template)), (1, 0)),
        ("Deployment", client.V1Deployment(metadata=meta, spec=client.V1DeploymentSpec(replicas=0, **template)), (0, 0)),
        ("StatefulSet", client.V1StatefulSet(metadata=meta, spec=client.V1StatefulSetSpec(
            replicas=3, service_name="web", **template), status=client.V1StatefulSetStatus(replicas=3, ready_replicas=2)),
         (3, 2)),
        ("DaemonSet", client.V1DaemonSet(metadata=meta, spec=client.V1DaemonSetSpec(**template),
                                         status=client.V1DaemonSetStatus(
                                             current_number_scheduled=2, desired_number_scheduled=2,
                                             number_misscheduled=0, number_ready=1)), (2, 1)),
    ]:
        planned = _counts(kind, workload, serialize)
        recorder = Recorder(lambda: None, Scope(("demo",)))
        recorder._started = time.monotonic()
        recorder._workload(kind)("ADDED", serialize(workload))  # as its watch hands it the object
        [recorded] = recorder.recording()["timeline"]
        assert (planned["desired"], planned["ready"]) == (recorded["desired"], recorded["ready"]) == expected, kind


def test_a_drill_run_from_a_pod_is_refused_when_its_method_hits_the_runner_s_own_node(monkeypatch):
    from chaosali.plan.build import _runner_node

    reasons: list[str] = []
    _runner_node(plan_with(), reasons)
    assert reasons == []  # not run from a pod
    monkeypatch.setenv("CHAOSALI_RUNNER_NODE", "master1")
    _runner_node(plan_with(), reasons)
    assert reasons == []  # the method hits worker1 and worker2
    monkeypatch.setenv("CHAOSALI_RUNNER_NODE", "worker2")
    _runner_node(plan_with(), reasons)
    assert reasons == ["runner's node: the method hits node worker2, where this drill's own pod runs, and would cut or "
                       "stop the drill itself: target the hosts by a query (it leaves that node out) or keep the "
                       "runner off them"]
