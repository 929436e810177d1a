"""Scheduled drills on the lab's real workers: the runner's image built without a registry and
imported into each worker's containerd, a drill run by a Job with its least-privilege account,
and its journal read back from the cluster with `chaosali runs` and `chaosali report --run`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from kubernetes import client

from chaosali.cli import main
from chaosali.cluster.api import connect
from chaosali.lab import runner_image
from chaosali.lab.cluster import Cluster
from chaosali.schedule.build import apply, schedule
from chaosali.schedule.manifests import SCHEDULE_LABEL, Options
from helpers import REPO, wait_until

NAMESPACE = "chaosali-drills"
MASTER_NETCUT = str(REPO / "experiments" / "master-netcut.json")


@pytest.fixture(scope="module")
def drills(kube) -> Iterator[Path]:
    """The image on every real worker of the shared lab, and its var file; the drills' objects
    are removed at the end (their namespace, and their roles in the namespaces they read)."""
    if kube.lab is None or kube.kwok_because:
        pytest.skip(kube.kwok_because or "scheduled drills run on the lab's real workers")
    runner_image.import_into(Cluster.of(kube.lab).containerd_sockets(), runner_image.build())
    yield kube.lab.vars_path
    with connect(kube.admin) as cluster:
        rbac = client.RbacAuthorizationV1Api(cluster.client)
        for role in rbac.list_role_for_all_namespaces(label_selector=SCHEDULE_LABEL).items:
            rbac.delete_namespaced_role(role.metadata.name, role.metadata.namespace)
        for binding in rbac.list_role_binding_for_all_namespaces(label_selector=SCHEDULE_LABEL).items:
            rbac.delete_namespaced_role_binding(binding.metadata.name, binding.metadata.namespace)
        rbac.delete_collection_cluster_role(label_selector=SCHEDULE_LABEL)
        rbac.delete_collection_cluster_role_binding(label_selector=SCHEDULE_LABEL)
        client.CoreV1Api(cluster.client).delete_namespace(NAMESPACE)


def runs_of(var_file: Path, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["runs", "--var-file", str(var_file), "--namespace", NAMESPACE, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def finished(var_file: Path, capsys, run: str, timeout: float = 180) -> dict:
    def ended() -> dict | None:
        found = next((r for r in runs_of(var_file, capsys) if r["run"] == run), None)
        return found if found and found["job"] not in ("running", "pending") and found.get("verdict") else None

    assert wait_until(ended, timeout, step=2) is not None, f"run {run} did not end within {timeout} s"
    return ended() or {}


def test_master_netcut_scheduled_now_cuts_master1_from_a_worker_and_its_journal_is_read_back(drills, kube, capsys):
    assert main(["schedule", MASTER_NETCUT, "--var-file", str(drills), "--var", "cut_seconds:int=5", "--now",
                 "--apply", "--namespace", NAMESPACE]) == 0
    run = capsys.readouterr().out.split(f"Job {NAMESPACE}/", 1)[1].split(";", 1)[0]
    found = finished(drills, capsys, run)
    assert (found["job"], found["status"], found["verdict"], found["proven"]) == ("succeeded", "completed", "ok", True)
    assert (found["stop_condition"], found["left_behind"]) == ("none broke", "nothing")
    with connect(kube.admin) as cluster:
        pod = client.CoreV1Api(cluster.client).list_namespaced_pod(NAMESPACE, label_selector=f"job-name={run}").items[0]
    assert pod.spec.node_name.startswith("worker")  # never on the master it cuts
    assert main(["report", "--run", run, "--var-file", str(drills), "--namespace", NAMESPACE]) == 0
    report = capsys.readouterr().out
    assert "network-cut" in report and "on master1" in report and "the API down" in report
    assert "met    fault proven" in report and "left behind: nothing" in report


def test_a_runner_whose_role_lacks_one_rule_stops_before_any_fault_naming_it(drills, capsys, tmp_path):
    narrow = tmp_path / "master-netcut-narrow.json"  # a schedule of its own: no role of the drill above
    narrow.write_text(Path(MASTER_NETCUT).read_text())
    documents, configuration, secrets = schedule(str(narrow), [str(drills)], [], Options(NAMESPACE))
    masters = next(d for d in documents if d["kind"] == "Role" and d["metadata"]["namespace"] == "kube-system")
    assert masters["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
    documents = [d for d in documents if d is not masters]
    run = apply(documents, configuration, secrets)[-1]["name"]
    found = finished(drills, capsys, run, timeout=90)
    assert found["job"].startswith("failed") and found["journal"] is None
    assert found["verdict"] == "REFUSED: the account lacks list pods in namespace kube-system"
