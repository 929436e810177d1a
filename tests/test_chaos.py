"""Random drills (chaosali.chaos) against the lab cluster: real hosts over SSH, a real apiserver."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import subprocess
import sys
from typing import Iterator

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosali.chaos._plan import plan
from chaosali.chaos.actions import inject_random_faults, restore_random_faults
from chaosali.core.errors import InvalidArgument
from chaosali.host.actions import lose_packets, restore_faults, stress_cpu
from helpers import REPO, assert_plan_agrees, markers, passed

WORKERS = {"nodes": "node-role.kubernetes.io/worker"}
ONE_WORKER = {**WORKERS, "count": 1}
# Faults that disturb nothing the lab needs: a discard port, one busy CPU.
POOL = [
    {"action": "lose_packets", "arguments": {"targets": WORKERS, "percent": 50, "ports": [9], "duration": 60}},
    {"action": "stress_cpu", "arguments": {"targets": ONE_WORKER, "workers": 1, "duration": 60}},
    {"action": "cut_network", "arguments": {"targets": ONE_WORKER, "ports": [9], "duration": 60}},
    {"action": "lose_packets", "arguments": {"targets": ONE_WORKER, "percent": 10, "ports": [9], "duration": 60}},
]


@pytest.fixture
def kube_chaos(kube_chaos: dict, kube) -> Iterator[dict]:
    """conftest's, and every drill test must leave no fault behind: whatever one left is removed,
    so it fails alone."""
    yield kube_chaos
    left = {host.name: markers(kube.lab, host) for host in kube.lab.hosts}
    restore_faults([host.address for host in kube.lab.hosts], **kube_chaos)
    assert not any(left.values()), f"faults left on the hosts: {left}"


def drawn(output: dict) -> list[tuple]:
    """What a drill chose: entries, in order, their hosts and start offsets."""
    return [(f["entry"], [h["address"] for h in f["hosts"]], f["offset"]) for f in output["faults"]]


def restored_ids(output: dict) -> set[str]:
    return {fault_id for ids in output["restored"].values() for fault_id in ids}


def no_markers(lab) -> bool:
    return all(markers(lab, host) == [] for host in lab.hosts)


def started(fault: dict) -> float:
    return dt.datetime.fromisoformat(fault["started_at"]).timestamp()


@pytest.mark.parametrize("arguments, complaint", [
    ({"pool": []}, "pool must be a non-empty list"),
    ({"pool": [{"action": "reboot_host", "arguments": {"targets": ["10.0.0.5"]}}]},
     "not a host fault a drill can pick"),
    ({"pool": [{"action": "stress_cpu", "arguments": {"targets": ["10.0.0.5"], "cores": 2}}]},
     "unexpected keyword argument 'cores'"),
    ({"pool": [{"action": "stress_cpu", "arguments": {"duration": 5}}]}, "missing a required argument: 'targets'"),
    ({"pool": POOL, "count": 5}, "count 5 must be a whole number from 1 to 4"),
    ({"pool": POOL, "mode": "sometimes"}, "mode 'sometimes' must be one of together, staggered"),
    ({"pool": POOL, "mode": "staggered"}, "give a window above 0"),
    ({"pool": POOL, "max_node_percent": 0}, "max_node_percent 0 allows no fault"),
    ({"pool": POOL, "allow_all_masters": "yes"}, "allow_all_masters 'yes' must be true or false"),
    ({"pool": POOL, "seed": 1.5}, "seed 1.5 must be a whole number or a string"),
])
def test_a_wrong_drill_is_refused_before_the_cluster_or_a_host_is_asked(arguments, complaint):
    with pytest.raises(InvalidArgument, match=re.escape(complaint)):
        inject_random_faults(**arguments)


def test_the_same_seed_replays_the_same_drill(kube, kube_chaos):
    first = inject_random_faults(POOL, count=3, seed=11, **kube_chaos)
    restore_random_faults(POOL, **kube_chaos)
    again = inject_random_faults(POOL, count=3, seed="11", **kube_chaos)  # as `--var seed=11` gives it
    restore_random_faults(POOL, **kube_chaos)

    assert first["seed"] == again["seed"] == 11
    assert drawn(first) == drawn(again) and len(drawn(first)) == 3
    assert not {f["fault_id"] for f in first["faults"]} & {f["fault_id"] for f in again["faults"]}
    assert "3 of 4 pool entries drawn with seed 11" in first["why"]
    # a sampled query without a seed of its own samples with one derived from the drill's
    sampled = [f["targets"] for f in first["faults"] if "count" in f["arguments"]["targets"]]
    assert sampled and all(t["query"]["seed"].startswith("11/") and "(seed 11/" in t["why"] for t in sampled)
    # other seeds draw other drills (the draw alone, nothing injected)
    draws = {tuple((s.entry, tuple(h.address for h in s.hosts)) for s in
                   plan(POOL, 3, seed, "together", 0, **kube_chaos).steps) for seed in range(8)}
    assert len(draws) > 1


@pytest.mark.parametrize("caps, complaint", [
    ({"max_hosts": 1}, r"would hit 2 hosts at once \(worker1 \(.*\), worker2 \(.*\)\), more than max_hosts 1"),
    ({"max_node_percent": 50},
     r"would hit 2 of the cluster's 3 nodes \(66.7 %: worker1, worker2\), more than max_node_percent 50"),
])
def test_a_drill_beyond_a_cap_is_refused_before_anything_is_injected(kube, kube_chaos, caps, complaint):
    pool = POOL[:1]  # packet loss on both workers
    with pytest.raises(ActivityFailed, match=complaint + ".*nothing was injected"):
        inject_random_faults(pool, count=1, seed=1, **caps, **kube_chaos)
    assert no_markers(kube.lab)
    # its rollback has nothing to restore, and knows it without sweeping the hosts
    assert restore_random_faults(pool, **kube_chaos) == {"restored": {}, "scope": "the faults this run injected"}

    within = {"max_hosts": 2} if "max_hosts" in caps else {"max_node_percent": 67}
    drill = inject_random_faults(pool, count=1, seed=1, **within, **kube_chaos)
    assert drill["blast_radius"]["hosts"] == [f"{h.name} ({h.address})" for h in kube.lab.hosts[1:]]
    assert drill["blast_radius"]["masters"] == {"checked": True, "hit": [], "of": ["master1"]}
    if "max_node_percent" in within:
        assert drill["blast_radius"]["nodes"] == {
            "hit": ["worker1", "worker2"], "of": 3, "percent": 66.7, "max_node_percent": 67}
    assert restored_ids(restore_random_faults(pool, **kube_chaos)) == {drill["faults"][0]["fault_id"]}


def test_never_every_master_at_once_unless_allowed(kube, kube_chaos):
    master = kube.lab.hosts[0]
    by_query = [{"action": "stress_cpu", "arguments": {"targets": {"masters": ["kube-apiserver"]}, "workers": 1}}]
    # a literal target is the master when it has the master's address
    by_address = [{"action": "stress_cpu", "arguments": {"targets": [f"root@{master.address}:22"], "workers": 1}}]
    for pool in (by_query, by_address):
        refused = r"would hit every master at once \(1 of 1: master1\); set allow_all_masters"
        with pytest.raises(ActivityFailed, match=refused):
            inject_random_faults(pool, seed=2, **kube_chaos)
        assert no_markers(kube.lab)

    drill = inject_random_faults(by_address, seed=2, allow_all_masters=True, **kube_chaos)
    assert drill["blast_radius"]["masters"] == {"checked": False, "why": "allow_all_masters is true"}
    assert [h["address"] for h in drill["faults"][0]["hosts"]] == [master.address]
    assert restored_ids(restore_random_faults(by_address, **kube_chaos)) == {drill["faults"][0]["fault_id"]}


def test_plain_hosts_without_a_cluster_go_on_without_the_master_check(kube, kube_chaos, caplog):
    worker = kube.lab.hosts[1].address
    pool = [{"action": "stress_cpu", "arguments": {"targets": [worker], "workers": 1}}]
    no_cluster = {**kube_chaos, "configuration": {**kube_chaos["configuration"], "kubeconfig_path": "/nonexistent"}}
    with caplog.at_level(logging.WARNING, logger="chaostoolkit"):
        drill = inject_random_faults(pool, max_hosts=1, **no_cluster)
    assert "cannot tell the cluster's masters (no kubeconfig found" in caplog.text
    assert drill["blast_radius"]["masters"]["checked"] is False and isinstance(drill["seed"], int)
    assert restored_ids(restore_random_faults(pool, **no_cluster)) == {drill["faults"][0]["fault_id"]}
    # a share of the nodes cannot be judged without the cluster: refused
    with pytest.raises(ActivityFailed, match="max_node_percent needs the cluster's nodes, but: no kubeconfig found"):
        inject_random_faults(pool, max_node_percent=50, **no_cluster)


def test_staggered_faults_start_over_the_window_together_ones_at_once(kube, kube_chaos):
    staggered = inject_random_faults(POOL, count=3, seed=5, mode="staggered", window=4, **kube_chaos)
    restore_random_faults(POOL, **kube_chaos)
    assert [f["offset"] for f in staggered["faults"]] == [0, 2, 4]
    starts = [started(f) - started(staggered["faults"][0]) for f in staggered["faults"]]
    assert starts[1] == pytest.approx(2, abs=0.5) and starts[2] == pytest.approx(4, abs=0.5)

    together = inject_random_faults(POOL, count=3, seed=5, **kube_chaos)
    restore_random_faults(POOL, **kube_chaos)
    assert [f["offset"] for f in together["faults"]] == [0, 0, 0]
    starts = [started(f) for f in together["faults"]]
    assert max(starts) - min(starts) < 1


def test_undo_restores_exactly_what_the_drill_injected(kube, kube_chaos):
    workers = [host.address for host in kube.lab.hosts[1:]]
    # a fault of a kind the pool injects too, put there by someone else: the undo must leave it
    bystander = stress_cpu(workers, workers=1, duration=60, **kube_chaos)["fault_id"]
    drill = inject_random_faults(POOL, count=3, seed=3, **kube_chaos)

    undone = restore_random_faults(POOL, **kube_chaos)
    expected: dict[str, list[str]] = {}
    for fault in drill["faults"]:
        for host in fault["hosts"]:
            expected.setdefault(host["host"], []).append(fault["fault_id"])
    assert {host: sorted(ids) for host, ids in undone["restored"].items() if ids} == {
        host: sorted(ids) for host, ids in expected.items()}
    assert all(markers(kube.lab, host) == [bystander] for host in kube.lab.hosts[1:])
    assert restored_ids(restore_random_faults(POOL, **kube_chaos)) == set()  # twice: nothing left
    restore_faults(workers, fault_id=bystander, **kube_chaos)


def test_undo_in_another_process_restores_the_pools_kinds_on_the_pools_hosts(kube, kube_chaos):
    pool = [{"action": "stress_cpu", "arguments": {"targets": ONE_WORKER, "workers": 1, "duration": 60}}]
    workers = [host.address for host in kube.lab.hosts[1:]]
    drill = inject_random_faults(pool, seed=4, **kube_chaos)
    # a kind the pool cannot inject: the sweep must leave it
    other_kind = lose_packets(workers, percent=10, ports=[9], duration=60, **kube_chaos)["fault_id"]

    script = ("import json, logging, sys; logging.basicConfig(level=logging.INFO); "
              "from chaosali.chaos.actions import restore_random_faults; "
              "print(json.dumps(restore_random_faults(**json.load(sys.stdin))))")
    other = subprocess.run([sys.executable, "-c", script], input=json.dumps({"pool": pool, **kube_chaos}),
                           capture_output=True, text=True, timeout=120)
    assert other.returncode == 0, other.stderr
    assert "no random faults of this pool were recorded in this run" in other.stderr
    swept = json.loads(other.stdout)
    assert restored_ids(swept) == {drill["faults"][0]["fault_id"]}
    assert swept["scope"] == "every chaosali fault of kind stress-cpu on the pool's hosts"
    assert sorted(swept["restored"]) == [f"{h.name} ({h.address})" for h in kube.lab.hosts[1:]]  # all it may choose
    assert all(markers(kube.lab, host) == [other_kind] for host in kube.lab.hosts[1:])

    assert restored_ids(restore_random_faults(pool, **kube_chaos)) == set()  # already gone: quietly nothing
    restore_faults(workers, fault_id=other_kind, **kube_chaos)


def test_a_fault_failing_midway_restores_what_the_drill_had_injected(kube, kube_chaos):
    worker1, worker2 = (host.address for host in kube.lab.hosts[1:])
    pool = [
        {"action": "stress_cpu", "arguments": {"targets": [worker1], "workers": 1, "duration": 60}},
        {"action": "reconfigure_kubelet", "arguments": {
            "targets": [worker2], "apiserver": "https://127.0.0.1:6443",
            "kubeconfig_path": "/etc/kubernetes/absent.conf"}},
        {"action": "lose_packets", "arguments": {"targets": [worker1], "percent": 10, "ports": [9]}},
    ]
    # a seed that draws them in this order: the load starts, the kubelet fault fails a second later
    seed = next(s for s in range(100)
                if [step.entry for step in plan(pool, 3, s, "staggered", 2, **kube_chaos).steps] == [0, 1, 2])

    with pytest.raises(ActivityFailed) as failure:
        inject_random_faults(pool, count=3, seed=seed, mode="staggered", window=2, **kube_chaos)
    message = str(failure.value)
    assert "reconfigure_kubelet (pool entry 1)" in message and "/etc/kubernetes/absent.conf does not exist" in message
    assert "the faults it had injected were restored: chaosali-" in message and f"stress-cpu on {worker1}" in message
    assert "network-loss" not in message  # never started
    assert no_markers(kube.lab)
    assert restored_ids(restore_random_faults(pool, **kube_chaos)) == set()


def test_the_random_chaos_experiment_runs_and_leaves_nothing_behind(monitored, forward):
    """As shipped, on the monitored lab, in its sequence of every drill (conftest.py ``forward``)."""
    planned, seeded = forward["random-chaos.json"].seen["plan"]
    # the seed's draw hits both workers, each running one of the two replicas its budget keeps one of:
    # the plan says so (the drill's FMEA allows 2 pods lost), and nothing else stands in its way
    assert seeded["reasons"] == [reason for reason in seeded["reasons"]
                                 if reason.startswith("PDB violated: PodDisruptionBudget demo/web allows 1 more")], seeded
    journal = forward["random-chaos.json"].journal
    variables = json.loads(monitored.lab.vars_path.read_text())
    chaos = {"configuration": variables["configuration"], "secrets": variables["secrets"]["ssh"]}

    assert passed(journal), json.dumps(journal["run"])[:3000]
    assert_plan_agrees(seeded, journal)  # the seed's combination, planned before the run
    drill = next(r["output"] for r in journal["run"] if r["activity"]["name"] == "inject-random-faults")
    assert drill["seed"] == 7 and drill["mode"] == "staggered" and len(drill["faults"]) == 2
    workers = {host.address for host in monitored.lab.hosts if host.role == "worker"}
    assert all(h["address"] in workers for f in drill["faults"] for h in f["hosts"])
    assert drill["blast_radius"]["masters"]["hit"] == []
    # the journal's drill is what the seed draws: it can be replayed
    experiment = json.loads((REPO / "experiments" / "random-chaos.json").read_text())
    replay = plan(experiment["configuration"]["pool"], 2, 7, "staggered", 4, **chaos)
    assert [(s.entry, [h.address for h in s.hosts], s.offset) for s in replay.steps] == drawn(drill)

    rollback = journal["rollbacks"][0]
    assert rollback["status"] == "succeeded"
    # a short fault may have healed by itself before the rollback; none it restores is another's
    assert restored_ids(rollback["output"]) <= {f["fault_id"] for f in drill["faults"]}
    # the evidence of each fault drawn: a cut outlasts the node grace period, so its node went
    # NotReady in the recording; a load's samples come back with the rollback
    impact = next(entry for entry in journal["extensions"] if entry["name"] == "chaosali-impact")
    names = {host.address: host.name for host in monitored.lab.hosts}
    observed = {fault_id for loads in rollback["output"].get("observed", {}).values() for fault_id in loads}
    after = {probe["activity"]["name"]: probe for probe in journal["steady_states"]["after"]["probes"]}
    for fault in drill["faults"]:
        for host in fault["hosts"]:
            if fault["kind"] == "network-cut":
                assert impact["measures"]["nodes"][names[host["address"]]]["seconds_not_ready"] > 0, impact["measures"]
        if fault["kind"].startswith("stress-"):
            assert fault["fault_id"] in observed
            assert fault["fault_id"] in {load["fault_id"] for load in after["loads-observed"]["output"]["loads"]}
