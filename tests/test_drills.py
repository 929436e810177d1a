"""The Kubernetes drills of experiments/, run with the real `chaos run` against the lab cluster."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest

from chaosali.cluster.probes import nodes_ready
from chaosali.host.ssh import Host, run_script
from conftest import chaos_run, journal_of, settings, wait_until


@pytest.fixture
def kube_config(kube) -> dict:
    return {"kubeconfig_path": str(kube.admin_kubeconfig)}


def api_answers(address: str) -> bool:
    try:
        socket.create_connection((address, 6443), timeout=0.5).close()
        return True
    except OSError:
        return False


def outputs(journal: dict) -> dict:
    return {run["activity"]["name"]: run.get("output") for run in journal["run"]}


def test_master_netcut_the_api_stops_answering_and_comes_back(kube, tmp_path):
    master = kube.lab.hosts[0].address
    run = chaos_run(tmp_path, "master-netcut.json", [kube.lab.vars_path], "--var", "cut_seconds:int=6")
    down_seen = wait_until(lambda: not api_answers(master), 60, step=0.1)
    assert down_seen is not None, "the API kept answering during the cut"
    journal = journal_of(run, tmp_path)

    assert journal["status"] == "completed" and journal["deviated"] is False
    out = outputs(journal)
    cut = out["cut-master-network"]
    assert cut["targets"]["hosts"] == [{"name": "master1", "address": master}]
    watched = out["watch-api-through-the-cut"]
    assert watched["down_at"] and watched["back_at"] and watched["last"] is True
    assert 4 <= watched["down_seconds"] <= 6 + 4
    assert api_answers(master)
    assert journal["rollbacks"][0]["output"]["restored"] == {f"master1 ({master})": []}


def test_sigkill_during_master_netcut_the_master_heals_by_itself(kube, tmp_path):
    master = kube.lab.hosts[0].address
    run = chaos_run(tmp_path, "master-netcut.json", [kube.lab.vars_path], "--var", "cut_seconds:int=6",
                    start_new_session=True)
    assert wait_until(lambda: not api_answers(master), 60, step=0.1) is not None
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    killed = time.monotonic()
    back = wait_until(lambda: api_answers(master), 30, step=0.1)
    assert back is not None and back < 6 + 3, "the master did not heal on its own timer"
    assert time.monotonic() - killed < 10


def test_kubelet_misconfig_node_goes_not_ready_then_ready_again(kube, kube_config, tmp_path):
    run = chaos_run(tmp_path, "kubelet-misconfig.json", [kube.lab.vars_path])
    journal = journal_of(run, tmp_path)

    assert journal["status"] == "completed" and journal["deviated"] is False, json.dumps(journal["run"])[:2000]
    out = outputs(journal)
    chosen = out["point-kubelet-at-a-wrong-apiserver"]["targets"]["hosts"]
    assert len(chosen) == 1 and chosen[0]["name"].startswith("worker")
    went_down, came_back = out["watch-node-go-not-ready"], out["watch-node-come-back"]
    assert went_down["last"] is False and went_down["down_at"], "the node never went NotReady"
    assert came_back["last"] is True and came_back["back_at"]
    assert out["restore-kubelet-configuration"]["restored"]
    assert nodes_ready(configuration=kube_config)
    kubelet_conf = run_script(Host(chosen[0]["address"]), "grep server: /etc/kubernetes/kubelet.conf", settings(kube.lab))
    assert kube.lab.hosts[0].address in kubelet_conf


def test_sigkill_during_kubelet_misconfig_the_kubelet_heals_by_itself(kube, kube_config, tmp_path):
    worker = kube.lab.hosts[1]
    run = chaos_run(tmp_path, "kubelet-misconfig.json", [kube.lab.vars_path],
                    "--var", "fault_seconds:int=8", "--var", f"node_selector=kubernetes.io/hostname={worker.name}",
                    start_new_session=True)
    conf = lambda: run_script(Host(worker.address), "grep server: /etc/kubernetes/kubelet.conf", settings(kube.lab))
    assert wait_until(lambda: "127.0.0.1" in conf(), 60, step=0.3) is not None
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert wait_until(lambda: kube.lab.hosts[0].address in conf(), 8 + 5) is not None
    ready = wait_until(lambda: nodes_ready(f"kubernetes.io/hostname={worker.name}", configuration=kube_config), 60, 1)
    assert ready is not None, "the node did not come back Ready after the kubelet healed"


def test_node_reboot_restarts_the_host_processes(kube, kube_config, tmp_path):
    run = chaos_run(tmp_path, "node-reboot.json", [kube.lab.vars_path])
    journal = journal_of(run, tmp_path)
    assert journal["status"] == "completed" and journal["deviated"] is False
    out = outputs(journal)
    rebooted = out["reboot-a-worker"]["targets"]["hosts"][0]
    assert isinstance(out["worker-answers-again"], float)
    # every process of the host is younger than the drill: it really rebooted, and booted again
    ages = run_script(Host(rebooted["address"]), "ps -e -o etimes=,comm=", settings(kube.lab)).splitlines()
    assert ages and all(int(line.split()[0]) < 60 for line in ages)
    assert any(line.split()[1] == "kwok" for line in ages)


def test_node_high_load_keeps_the_api_ready(kube, tmp_path):
    run = chaos_run(tmp_path, "node-high-load.json", [kube.lab.vars_path], "--var", "load_seconds:int=5")
    journal = journal_of(run, tmp_path)
    assert journal["status"] == "completed" and journal["deviated"] is False
    out = outputs(journal)
    report = out["saturate-worker-cpu"]["hosts"][0]["report"]
    assert report[0].startswith("load process group")
    assert out["api-ready-under-load"] is True
