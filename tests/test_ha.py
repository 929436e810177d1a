"""The highly available lab: 3 masters (etcd members, API servers) behind a load balancer."""

from __future__ import annotations

from chaosali.cluster.nodes import master_hosts
from helpers import chaos_run, journal_of, passed


def test_master_hosts_of_three_masters(ha_cluster):
    found = master_hosts({"kubeconfig_path": str(ha_cluster.admin_kubeconfig)})
    assert [(h["node"], h["ssh_address"]) for h in found] == [(m.name, m.address) for m in ha_cluster.masters]
    assert all(h["components"] == ["kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager"]
               for h in found)
    assert ha_cluster.endpoint == f"https://{ha_cluster.balancer.address}:6443"


def test_cutting_one_master_keeps_the_api_answering(ha_cluster, tmp_path):
    # the watch ends before the 15 s cut does, so that the rollback still finds the cut to restore
    run = chaos_run(tmp_path, "master-netcut-ha.json", [ha_cluster.lab.vars_path], "--var", "watch_seconds:int=4")
    journal = journal_of(run, tmp_path)
    assert passed(journal)
    out = {r["activity"]["name"]: r["output"] for r in journal["run"]}
    cut, watched = out["cut-one-master"], out["watch-api-while-one-master-is-cut"]
    assert out["cut-master-stops-answering"]["unreachable"] is True
    assert len(cut["targets"]["hosts"]) == 1 and cut["targets"]["hosts"][0]["name"].startswith("master")
    assert watched["down_at"] is None and watched["watched_seconds"] >= 4
    restored = journal["rollbacks"][0]["output"]["restored"]
    assert list(restored.values()) == [[cut["fault_id"]]]


def test_etcd_partition_the_majority_serves_the_isolated_member_s_api_server_fails(ha_cluster, tmp_path):
    run = chaos_run(tmp_path, "etcd-partition.json", [ha_cluster.lab.vars_path], "--var", "partition_seconds:int=10",
                    "--var", "watch_seconds:int=20")
    journal = journal_of(run, tmp_path)
    assert passed(journal)
    out = {r["activity"]["name"]: r["output"] for r in journal["run"]}
    cut = out["partition-one-etcd-member"]
    (isolated,) = cut["targets"]["hosts"]
    peers = {m.address for m in ha_cluster.masters}
    rules = "\n".join(cut["hosts"][0]["report"])
    assert all(f"-s {peer}/32" in rules for peer in peers) and "--ports 2380" in rules and "2379" not in rules
    beside, balancer = out["watch-api-beside-the-isolated-member"], out["watch-api-through-the-balancer"]
    assert beside["apiserver"] == isolated["address"]
    assert beside["down_at"] and beside["back_at"] and beside["last"] is True, beside
    # the balancer checks /readyz: the failing API server leaves its rotation within about a second
    assert balancer["down_seconds"] <= 5 and balancer["last"] is True, balancer
    print(f"\netcd partition of {isolated['name']} for 10 s: its API server down {beside['down_seconds']:.1f} s; "
          f"through the balancer {balancer['down_seconds'] or 0:.1f} s down over {len(balancer['changes'])} changes")
    assert balancer["last"] is True
