"""The lab cluster is laid out as a kubeadm cluster and runs real control-plane processes."""

from __future__ import annotations

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from chaosali.host.ssh import Host, run_script
from chaosali.lab.cluster import Cluster
from helpers import kubelet_process, settings


@pytest.fixture(scope="module")
def core(kube):
    api = config.new_client_from_config(config_file=str(kube.admin_kubeconfig))
    yield client.CoreV1Api(api)
    api.close()


def test_nodes_are_the_hosts_with_roles_and_the_master_taint(kube, core):
    nodes = {n.metadata.name: n for n in core.list_node().items}
    assert sorted(nodes) == ["master1", "worker1", "worker2"]
    for host in kube.lab.hosts:
        node = nodes[host.name]
        assert [a.address for a in node.status.addresses if a.type == "InternalIP"] == [host.address]
        assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    master = nodes["master1"]
    assert "node-role.kubernetes.io/control-plane" in master.metadata.labels
    assert [t.key for t in master.spec.taints] == ["node-role.kubernetes.io/control-plane"]
    assert "node-role.kubernetes.io/control-plane" not in nodes["worker1"].metadata.labels


def test_control_plane_pods_are_labelled_as_kubeadm_does_and_bound_to_the_master(core):
    pods = core.list_namespaced_pod("kube-system", label_selector="tier=control-plane").items
    assert sorted(p.metadata.labels["component"] for p in pods) == [
        "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
    ]
    assert {p.spec.node_name for p in pods} == {"master1"}
    assert all(p.status.phase == "Running" for p in pods)


def test_the_control_plane_really_runs_on_the_master_host(kube, core):
    master = kube.lab.hosts[0]
    processes = run_script(Host(master.address), "ps -e -o comm=", settings(kube.lab)).split()
    for binary in ("etcd", "kube-apiserver", "kube-controller", "kube-scheduler", "kwok"):
        assert binary in processes
    worker_processes = run_script(Host(kube.lab.hosts[1].address), "ps -e -o comm=", settings(kube.lab)).split()
    assert "kube-apiserver" not in worker_processes and kubelet_process(kube.lab) in worker_processes
    endpoints = core.read_namespaced_endpoints("kubernetes", "default")
    assert [a.ip for s in endpoints.subsets for a in s.addresses] == [master.address]


def test_the_demo_workload_runs_on_workers(core):
    pods = core.list_namespaced_pod("demo", label_selector="app=web").items
    assert len(pods) == 2 and all(p.status.phase == "Running" for p in pods)
    assert {p.spec.node_name for p in pods} <= {"worker1", "worker2"}


def test_the_readonly_kubeconfig_reads_but_cannot_write(kube):
    api = config.new_client_from_config(config_file=str(kube.readonly_kubeconfig))
    try:
        readonly = client.CoreV1Api(api)
        assert readonly.list_namespaced_pod("demo").items
        with pytest.raises(ApiException) as refused:
            readonly.create_namespace({"metadata": {"name": "not-allowed"}})
        assert refused.value.status == 403
    finally:
        api.close()


def test_status_reports_the_api_and_every_service(kube):
    status = Cluster(kube.lab).status()
    assert status["api_ready"] is True
    assert status["services"]["master1"]["kube-apiserver"] == "active"
    if kubelet_process(kube.lab) == "kubelet":  # a real worker: its container runtime, kubelet and proxy
        assert status["services"]["worker2"] == {"containerd": "active", "kubelet": "active", "kube-proxy": "active",
                                                 "sshd": "active"}
    else:  # "pods" runs kube-monkey's pods when the lab has the real kube-monkey (k8sbuild.kube_monkey)
        assert status["services"]["worker2"] in ({"kubelet": "active", "sshd": "active"},
                                                 {"kubelet": "active", "sshd": "active", "pods": "active"})
