"""The fault ledger in the lab, with the real ``chaos run``: a fault that did not go in fails the
drill (host, drain, kube-monkey and random faults), a drill that never started exits 1, a second
drill on a locked cluster is refused before it touches anything, and a run killed with SIGKILL in
the middle of a drain or of kube-monkey is healed by ``chaosali cleanup`` from its ledger."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from kubernetes import client as k8s

from chaosali.cluster.api import new_api_client
from chaosali.core import extensions, ledger
from chaosali.core.markers import CORDONED_BY_ANNOTATION
from chaosali.report.figures import read_run
from chaosali.report.words import proof_sentence, run_verdict
from helpers import REPO, chaos_run, fault_proven, journal_of, passed, runs_real_kube_monkey, wait_until

KM_ENABLED = "kube-monkey/enabled"


def ledger_of(journal: dict) -> list[ledger.Fault]:
    [entry] = extensions.entries(journal, extensions.LEDGER)
    return [record for record in map(ledger.Fault.from_json, entry["faults"]) if record is not None]


def assert_not_injected(run: subprocess.Popen, journal: dict, kind: str, why: str) -> None:
    """The drill failed in chaos run's own verdict, its ledger and its report, saying why."""
    assert run.returncode == 1 and journal["deviated"] is True
    [failed] = [record for record in ledger_of(journal) if record.not_injected]
    assert failed.kind == kind and why in failed.not_injected and failed.state == "not injected"
    after = {p["activity"]["name"]: p for p in journal["steady_states"]["after"]["probes"]}
    assert after["faults-proven"]["tolerance_met"] is False and "not injected" in after["faults-proven"]["output"]["why"]
    report = read_run(journal)
    assert run_verdict(report) == "FAULT NOT OBSERVED" and why in proof_sentence(report)


def cordoned(core: k8s.CoreV1Api) -> list[str]:
    return [n.metadata.name for n in core.list_node().items if CORDONED_BY_ANNOTATION in (n.metadata.annotations or {})]


def chaosali(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(["chaosali", *arguments], capture_output=True, text=True, timeout=180)


def test_disk_full_whose_fill_fails_is_a_failed_drill_not_a_pass(kube, real_containers, tmp_path):
    run = chaos_run(tmp_path, "disk-full.json", [kube.lab.vars_path], "--var", "fill_path:str=/nonexistent/x")
    journal = journal_of(run, tmp_path)
    assert_not_injected(run, journal, "disk-fill", "/nonexistent/x")
    within = {p["activity"]["name"]: p for p in journal["steady_states"]["after"]["probes"]}.get("impact-within-fmea")
    assert within is None or within["tolerance_met"] is False  # the steady state stops at its first miss


def test_node_drain_whose_query_matches_no_node_is_a_failed_drill(kube, tmp_path):
    run = chaos_run(tmp_path, "node-drain.json", [kube.lab.vars_path], "--var", "workload_selector:str=app=nothing-here")
    journal = journal_of(run, tmp_path)
    assert_not_injected(run, journal, "drain", "app=nothing-here")


def test_kube_monkey_whose_deployment_is_refused_is_a_failed_drill(kube, tmp_path):
    run = chaos_run(tmp_path, "kube-monkey.json", [kube.lab.vars_path], "--var", "kube_monkey_namespace:str=Not_A_Name",
                    "--var", "kill_seconds:int=1")
    journal = journal_of(run, tmp_path)
    assert run.returncode == 1 and journal["deviated"] is True
    failed = [record for record in ledger_of(journal) if record.not_injected]
    assert [record.kind for record in failed] == ["kube-monkey"] and "Not_A_Name" in failed[0].not_injected
    core = k8s.CoreV1Api(new_api_client(kube.admin))
    web = k8s.AppsV1Api(core.api_client).read_namespaced_deployment("web", "demo")
    assert KM_ENABLED not in (web.metadata.labels or {})  # its rollback withdrew the victims it marked


def test_random_chaos_whose_drawn_fault_fails_on_its_host_is_a_failed_drill(kube, real_containers, tmp_path):
    pool = [{"action": "fill_disk", "arguments": {"targets": {"nodes": "node-role.kubernetes.io/worker", "count": 1},
                                                  "path": "/nonexistent/x", "percent": 50, "duration": 10}}]
    variables = tmp_path / "pool.json"
    variables.write_text(json.dumps({"configuration": {"pool": pool, "fault_count": 1, "watch_seconds": 1}}))
    run = chaos_run(tmp_path, "random-chaos.json", [kube.lab.vars_path, variables])
    journal = journal_of(run, tmp_path)
    assert_not_injected(run, journal, "disk-fill", "/nonexistent/x")


def test_host_netcut_against_a_host_whose_key_is_unknown_never_starts_and_exits_1(lab, tmp_path):
    from test_experiments import run_on_test_lab

    unknown = tmp_path / "known_hosts"
    unknown.write_text("")
    run = run_on_test_lab(lab, tmp_path, "host-netcut.json", "--var", f"ssh_known_hosts:str={unknown}")
    output = run.communicate(timeout=120)[0].decode()
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert run.returncode == 1, output
    assert journal["status"] == "failed" and journal["run"] == []
    [safety] = extensions.entries(journal, extensions.SAFETY)
    assert safety["not_started"].startswith("the drill never started") and safety["revert"]["left_behind"] == "nothing"
    assert run_verdict(read_run(journal)) != "ok"


def test_a_second_drill_on_a_locked_cluster_is_refused_before_it_touches_anything(kube, tmp_path):
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    first = chaos_run(first_dir, "node-drain.json", [kube.lab.vars_path], "--var", "drain_timeout:int=10")
    core = k8s.CoreV1Api(new_api_client(kube.admin))
    coordination = k8s.CoordinationV1Api(core.api_client)

    def held() -> bool:
        try:
            return bool(coordination.read_namespaced_lease("chaosali-drill-lock", "default").spec.holder_identity)
        except k8s.ApiException:
            return False

    assert wait_until(held, 60) is not None, "the first drill never took the lock"
    second = chaos_run(second_dir, "node-reboot.json", [kube.lab.vars_path])
    output = second.communicate(timeout=120)[0].decode()
    assert second.returncode == 1
    refused = json.loads((second_dir / "journal.json").read_text())
    assert refused["status"] == "interrupted" and refused["run"] == [] and refused["steady_states"]["before"] is None
    assert "migrated off a node" in output  # the holder is named: the first drill's title
    journal = journal_of(first, first_dir)
    assert passed(journal)  # the first ends as it would alone


def test_sigkill_mid_drain_then_cleanup_heals_the_cordon_from_the_ledger(kube, tmp_path):
    core = k8s.CoreV1Api(new_api_client(kube.admin))

    run = chaos_run(tmp_path, "node-drain.json", [kube.lab.vars_path], "--var", "drain_timeout:int=30",
                    start_new_session=True)
    try:
        assert wait_until(lambda: cordoned(core), 90) is not None, "the drain never cordoned a node"
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    listed = chaosali("cleanup", "--list")
    # in effect while it evicts, ended (not healed) once its evictions are done: the cordon stays
    assert "(dead): drain chaosali-" in listed.stdout and ("in effect" in listed.stdout or "not healed yet" in listed.stdout), listed.stdout
    healed = chaosali("cleanup", "--var-file", str(kube.lab.vars_path))
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert ": drain chaosali-" in healed.stdout and ": healed" in healed.stdout
    assert cordoned(core) == [] and not any(n.spec.unschedulable for n in core.list_node().items
                                        if "worker" in n.metadata.name)
    assert "no fault open" in chaosali("cleanup", "--list").stdout


def test_sigkill_mid_kube_monkey_then_cleanup_removes_it_and_the_victim_labels(kube, real_containers, tmp_path):
    if not runs_real_kube_monkey(kube.lab):
        pytest.skip("the lab runs no real kube-monkey (CHAOSALI_KUBE_MONKEY_SRC)")
    apps = k8s.AppsV1Api(new_api_client(kube.admin))

    def marked() -> bool:
        return KM_ENABLED in (apps.read_namespaced_deployment("web", "demo").metadata.labels or {})

    def kube_monkey_objects() -> list[str]:
        return [d.metadata.name for d in apps.list_namespaced_deployment("kube-monkey").items]

    run = chaos_run(tmp_path, "kube-monkey.json", [kube.lab.vars_path], "--var", "kill_seconds:int=120",
                    start_new_session=True)
    try:
        assert wait_until(marked, 180, step=1) is not None, "the victims were never marked"
        assert kube_monkey_objects()
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    listed = chaosali("cleanup", "--list").stdout
    assert "kube-monkey chaosali-" in listed and "kube-monkey victims chaosali-" in listed, listed
    healed = chaosali("cleanup", "--var-file", str(kube.lab.vars_path))
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert ": kube-monkey chaosali-" in healed.stdout and ": kube-monkey victims chaosali-" in healed.stdout
    assert "not healed" not in healed.stdout
    assert not marked()
    gone = wait_until(lambda: not kube_monkey_objects(), 60)
    assert gone is not None, "kube-monkey's Deployment is still there"
    rbac = k8s.RbacAuthorizationV1Api(apps.api_client)
    assert not [r.metadata.name for r in rbac.list_cluster_role().items if "kube-monkey" in r.metadata.name
                and (r.metadata.labels or {}).get("app.kubernetes.io/managed-by") == "chaosali"]
    assert "no fault open" in chaosali("cleanup", "--list").stdout


def test_the_lock_s_next_holder_heals_first_what_a_holder_killed_mid_drain_left(kube, tmp_path):
    core = k8s.CoreV1Api(new_api_client(kube.admin))
    experiment = json.loads((REPO / "experiments" / "node-drain.json").read_text())
    for control in experiment["controls"]:
        if control["name"] == "lock":  # a short lease: the next holder need not wait a minute
            control["provider"]["arguments"] = {"duration": 3}
    (tmp_path / "short-lock.json").write_text(json.dumps(experiment))
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    first = chaos_run(first_dir, str(tmp_path / "short-lock.json"), [kube.lab.vars_path], "--var",
                      "drain_timeout:int=30", start_new_session=True)
    try:
        assert wait_until(lambda: cordoned(core), 90) is not None, "the drain never cordoned a node"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    time.sleep(4)  # the killed run's lease runs out
    second = chaos_run(second_dir, "node-drain.json", [kube.lab.vars_path], "--var", "drain_timeout:int=10")
    journal = journal_of(second, second_dir)
    output = (second_dir / "chaostoolkit.log").read_text()
    assert "the lock's last holder" in output and ": healed" in output
    # the second drill ran in full (both replicas may have sat on its node after the first one's drain:
    # its impact is the workload's placement, not this test's concern) and left nothing, nor did the first
    assert journal["status"] == "completed" and fault_proven(journal)["proven"] is True
    assert cordoned(core) == [] and "no fault open" in chaosali("cleanup", "--list").stdout
