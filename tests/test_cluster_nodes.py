"""Hosts found from a kubeconfig alone, against the lab's real apiserver."""

from __future__ import annotations

import json
import re
import socket

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config

from chaosali.cluster import probes
from chaosali.cluster.nodes import master_hosts, select_hosts
from chaosali.core.errors import InvalidArgument
from chaosali.host.actions import cut_network, restore_network


def test_master_hosts_match_the_lab_layout(kube, kube_admin):
    master = kube.lab.hosts[0]
    assert master_hosts(kube_admin) == [{
        "node": "master1",
        "addresses": {"InternalIP": master.address},
        "components": ["kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager"],
        "ssh_address": master.address,
    }]


def test_master_hosts_and_host_queries_as_probes_answer_plain_json(kube, kube_admin):
    masters = probes.master_hosts(configuration=kube_admin)
    assert json.loads(json.dumps(masters)) == masters == master_hosts(kube_admin)
    assert probes.master_hosts(["etcd", "apiserver"], configuration=kube_admin) == masters
    with pytest.raises(InvalidArgument, match=re.escape("unknown master component(s) ['kube-dns']")):
        probes.master_hosts(["kube-dns"], configuration=kube_admin)

    workers = probes.hosts_of({"nodes": "node-role.kubernetes.io/worker"}, configuration=kube_admin)
    assert json.loads(json.dumps(workers)) == workers
    assert [h["name"] for h in workers["hosts"]] == ["worker1", "worker2"]
    assert probes.hosts_of({"masters": []}, configuration=kube_admin)["hosts"] == [
        {"name": "master1", "address": kube.lab.hosts[0].address}
    ]
    # no host is an answer for a probe (a host action would refuse to run)
    assert probes.hosts_of({"nodes": "disk=none-such"}, configuration=kube_admin) == {
        "hosts": [], "why": "no nodes matching 'disk=none-such'"
    }
    with pytest.raises(InvalidArgument, match="give exactly one of 'masters'"):
        probes.hosts_of({"nodes": "x", "pods": {}}, configuration=kube_admin)


def test_a_configured_map_overrides_the_internal_ip(kube, kube_admin):
    kube_admin["node_ssh_addresses"] = {"master1": "bastion-7.example"}
    assert master_hosts(kube_admin)[0]["ssh_address"] == "bastion-7.example"


def test_nodes_by_selector_pods_and_a_replayable_sample(kube, kube_admin):
    workers = select_hosts({"nodes": "node-role.kubernetes.io/worker"}, kube_admin)
    assert [h["name"] for h in workers["hosts"]] == ["worker1", "worker2"]
    assert "nodes matching 'node-role.kubernetes.io/worker': 2 of 2" in workers["why"]

    query = {"nodes": {"kubernetes.io/os": "linux"}, "count": 2, "seed": 42}
    first, again = select_hosts(query, kube_admin), select_hosts(query, kube_admin)
    assert first == again and len(first["hosts"]) == 2 and "(seed 42)" in first["why"]
    assert len(select_hosts({"nodes": "kubernetes.io/os=linux", "percent": 34}, kube_admin)["hosts"]) == 1

    api = config.new_client_from_config(config_file=str(kube.admin_kubeconfig))
    running = {p.spec.node_name for p in client.CoreV1Api(api).list_namespaced_pod("demo", label_selector="app=web").items}
    api.close()
    by_pods = select_hosts({"pods": {"namespace": "demo", "label_selector": "app=web"}}, kube_admin)
    assert {h["name"] for h in by_pods["hosts"]} == running


@pytest.mark.parametrize(
    "query, problem",
    [
        ({"nodes": "disk=none-such"}, "no host to act on: no nodes matching 'disk=none-such'"),
        ({"nodes": "kubernetes.io/os=linux", "percent": 0}, "percent 0 selects no host"),
        ({"masters": ["kube-dns"]}, "unknown master component(s) ['kube-dns']"),
        ({"nodes": "x", "pods": {}}, "give exactly one of 'masters'"),
        ({"nodes": "kubernetes.io/os=linux", "count": 9}, "host query: count 9 must be a whole number from 1 to 3"),
    ],
)
def test_bad_queries_are_clear_errors_and_inject_nothing(kube_chaos, query, problem):
    with pytest.raises(ActivityFailed, match=re.escape(problem)):
        cut_network(query, duration=30, **kube_chaos)


def test_masters_invisible_as_in_a_managed_cluster(kube, kube_admin):
    api = config.new_client_from_config(config_file=str(kube.admin_kubeconfig))
    core = client.CoreV1Api(api)
    label = "node-role.kubernetes.io/control-plane"
    pods = core.list_namespaced_pod("kube-system", label_selector="tier=control-plane").items
    try:
        core.patch_node("master1", {"metadata": {"labels": {label: None}}})
        for pod in pods:
            core.patch_namespaced_pod(pod.metadata.name, "kube-system", {"metadata": {"labels": {"component": None}}})
        with pytest.raises(ActivityFailed, match="the masters of this cluster are not visible") as invisible:
            master_hosts(kube_admin)
        assert "managed cluster" in str(invisible.value)
    finally:
        core.patch_node("master1", {"metadata": {"labels": {label: ""}}})
        for pod in pods:
            core.patch_namespaced_pod(pod.metadata.name, "kube-system",
                                      {"metadata": {"labels": {"component": pod.metadata.labels["component"]}}})
        api.close()
    assert master_hosts(kube_admin)[0]["node"] == "master1"


def test_cut_the_apiserver_hosts_found_from_the_kubeconfig(kube, kube_chaos):
    chaos = kube_chaos
    master = kube.lab.hosts[0]
    output = cut_network({"masters": ["kube-apiserver"]}, duration=60, **chaos)
    try:
        assert output["targets"]["hosts"] == [{"name": "master1", "address": master.address}]
        assert "hosts of master components kube-apiserver" in output["targets"]["why"]
        with pytest.raises(TimeoutError, match="timed out"):  # dropped, not refused: the rules DROP
            socket.create_connection((master.address, 6443), timeout=1).close()
    finally:
        restored = restore_network({"masters": ["kube-apiserver"]}, **chaos)
    assert restored["restored"] == {f"master1 ({master.address})": [output["fault_id"]]}
    socket.create_connection((master.address, 6443), timeout=2).close()
