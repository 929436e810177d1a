"""`chaosali plan --rbac`: the least-privilege RBAC derived from the experiment, with no cluster."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from chaosali.cli import main
from chaosali.plan.build import load
from chaosali.plan.rbac import rbac, role_documents
from helpers import REPO

EXPERIMENTS = sorted((REPO / "experiments").glob("*.json"))
LOCK = {"name": "lock", "provider": {"type": "python", "module": "chaosali.lock.controls",
                                     "arguments": {"name": "drills", "namespace": "chaos", "duration": 60}}}


def needed(experiment: str, change=lambda experiment: None) -> dict:
    loaded, configuration, secrets = load(str(REPO / "experiments" / experiment), [], [])
    loaded = copy.deepcopy(loaded)
    change(loaded)
    return rbac(loaded, configuration, secrets)


def grants(rules: list[dict]) -> set[tuple]:
    """Each (namespace, group, resource, names, verb) the rules grant."""
    return {(r["namespace"], r["apiGroups"][0], r["resources"][0], tuple(r.get("resourceNames", ())), verb)
            for r in rules for verb in r["verbs"]}


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=lambda path: path.stem)
def test_every_shipped_experiment_has_its_rules_each_with_why_and_nothing_to_grant_by_hand(experiment):
    found = needed(experiment.name)
    assert found["unknown"] == []
    for rule in found["rules"]:
        assert rule["verbs"] and rule["why"], rule
        assert not {"*", "escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
    declared = json.loads(experiment.read_text())
    modules = {c["provider"]["module"] for c in declared.get("controls", [])}
    leases = {g for g in grants(found["rules"]) if g[2] == "leases"}
    assert bool(leases) == ("chaosali.lock.controls" in modules)  # its lock, and no lease without one
    if "chaosali.impact.controls" in modules:  # the recorder watches the nodes
        assert {(None, "", "nodes", (), "list"), (None, "", "nodes", (), "watch")} <= grants(found["rules"])


def test_master_netcut_reads_the_masters_and_its_workload_and_changes_only_its_lock_and_its_workload_s_rollout():
    granted = grants(needed("master-netcut.json")["rules"])
    assert {(None, "", "nodes", (), "get"), ("kube-system", "", "pods", (), "list"),
            ("default", "", "endpoints", ("kubernetes",), "get"),
            ("demo", "apps", "deployments", ("web",), "get"), ("demo", "", "pods", (), "watch")} <= granted
    restart = ("demo", "apps", "deployments", ("web",), "patch")  # the spread control's rollout restart, by name
    assert restart in granted
    assert {verb for *_, verb in granted - {restart} if not _lock_grant(_)} <= {"get", "list", "watch"}
    assert {namespace for namespace, *_ in granted if not _lock_grant(_)} == {None, "default", "kube-system", "demo"}


def _lock_grant(grant: tuple) -> bool:
    return grant[1] == "coordination.k8s.io"


def test_the_lock_needs_its_lease_by_name_and_create_in_its_namespace():
    def locked_by_mine(experiment: dict) -> None:
        others = [c for c in experiment.get("controls", []) if c["provider"]["module"] != "chaosali.lock.controls"]
        experiment["controls"] = [*others, LOCK]

    found = needed("master-netcut.json", locked_by_mine)
    leases = {g for g in grants(found["rules"]) if _lock_grant(g)}
    assert leases == {("chaos", "coordination.k8s.io", "leases", ("drills",), "get"),
                      ("chaos", "coordination.k8s.io", "leases", ("drills",), "update"),
                      ("chaos", "coordination.k8s.io", "leases", (), "create")}


def test_the_safety_control_of_a_drain_may_uncordon_and_read_the_cordons_its_revert_checks():
    def with_safety_only(experiment: dict) -> None:
        experiment["rollbacks"] = []
        experiment["controls"] = [{"name": "safety", "provider": {"type": "python", "module": "chaosali.safety.controls"}}]

    found = needed("node-drain.json", with_safety_only)
    nodes = [r for r in found["rules"] if r["resources"] == ["nodes"]][0]
    assert {"get", "patch"} <= set(nodes["verbs"])
    assert "control 'safety': halt and verified revert of 'drain-a-node'" in nodes["why"]


def test_a_stop_condition_s_probe_needs_what_the_probe_reads():
    condition = {"name": "web pods", "probe": {"type": "probe", "name": "pods", "tolerance": True, "provider": {
        "type": "python", "module": "chaosali.cluster.probes", "func": "get",
        "arguments": {"kind": "Pod", "namespace": "shop", "label_selector": "app=cart"}}}}
    control = {"name": "safety", "provider": {"type": "python", "module": "chaosali.safety.controls",
                                              "arguments": {"conditions": [condition]}}}
    found = needed("host-netcut.json", lambda e: e.setdefault("controls", []).append(control))
    assert grants(found["rules"]) == {("shop", "", "pods", (), "list")}
    assert found["rules"][0]["why"] == ["control 'safety': stop condition 'web pods'"]


def test_kube_monkey_holds_what_its_cluster_role_grants_as_the_api_server_requires():
    granted = grants(needed("kube-monkey.json")["rules"])
    assert {(None, "", "pods", (), "delete"), (None, "apps", "deployments", (), "watch"),
            (None, "rbac.authorization.k8s.io", "clusterroles", (), "create"),
            ("kube-monkey", "apps", "deployments", (), "patch")} <= granted


def test_what_chaosali_cannot_know_is_named_to_grant_by_hand(tmp_path, capsys):
    experiment = json.loads((REPO / "experiments" / "host-netcut.json").read_text())
    experiment["method"].append({"type": "action", "name": "apply-from-file", "provider": {
        "type": "python", "module": "chaosali.cluster.actions", "func": "apply", "arguments": {"path": "x.yaml"}}})
    experiment["method"].append({"type": "action", "name": "k8s", "provider": {
        "type": "python", "module": "chaosk8s.pod.actions", "func": "terminate_pods", "arguments": {}}})
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(experiment))
    assert main(["plan", str(path), "--rbac", "--format", "json"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["unknown"] == [
        "method 'apply-from-file': the manifest is read at run time from 'x.yaml': grant get, create, patch on its "
        "kinds by hand",
        "method 'k8s': chaosk8s.pod.actions.terminate_pods is not chaosali's: grant what it needs by hand"]
    assert "chaosali plan: not granted: method 'k8s'" in err


def test_plan_rbac_prints_a_cluster_role_and_a_role_per_namespace(capsys):
    assert main(["plan", str(REPO / "experiments" / "master-netcut.json"), "--rbac"]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    kinds = {(d["kind"], d["metadata"].get("namespace")) for d in documents}
    assert {("ClusterRole", None), ("Role", "kube-system"), ("Role", "demo"), ("Role", "default")} <= kinds
    assert all(d["metadata"]["name"] == "chaosali-master-netcut" for d in documents)
    cluster_role = next(d for d in documents if d["kind"] == "ClusterRole")
    assert cluster_role["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]


def test_role_documents_bind_each_role_to_the_drill_s_account():
    rules = [{"namespace": None, "apiGroups": [""], "resources": ["nodes"], "verbs": ["list"], "why": ["x"]},
             {"namespace": "demo", "apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"],
              "verbs": ["get"], "why": ["y"]}]
    documents = role_documents(rules, "chaosali-x", "runner", "chaos")
    assert [(d["kind"], d["metadata"].get("namespace")) for d in documents] == [
        ("ClusterRole", None), ("ClusterRoleBinding", None), ("Role", "demo"), ("RoleBinding", "demo")]
    assert documents[2]["rules"] == [{"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"],
                                      "verbs": ["get"]}]
    assert documents[3]["subjects"] == [{"kind": "ServiceAccount", "name": "runner", "namespace": "chaos"}]
