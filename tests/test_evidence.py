"""The evidence of host faults: a reboot's new boot identity, what a load made its host carry,
a network fault measured from outside. The shell runs here first (no lab), then against the lab."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosali.host import evidence, faults, system
from chaosali.host.actions import cut_network, lose_packets, reboot_host, restore_network, stress_cpu, stress_memory
from chaosali.host.probes import load_observed, network_effect, wait_for_reboot
from chaosali.impact.probes import faults_observed
from chaosali.host.ssh import Host, SSHSettings
from helpers import markers, sh, wait_until



@pytest.fixture
def root(marker_root: Path) -> Path:
    """Where the host scripts run: the markers' parent, which must be left with nothing else."""
    return marker_root.parent


def test_samples_outlive_the_load_until_a_restore_prints_and_removes_them(root):
    load = system.stress_cpu_fault("stress-cpu", 3, 1)
    exits = system._load_fault("stress-cpu", 3, stress_ng="true", fallback="true")
    held = system.stress_memory_fault("stress-memory", 3, 20)
    for fault in (load, exits, held):
        sh(fault.render(), root)
    marker_root = Path(faults.MARKER_ROOT)
    # the timers end the loads and keep nothing but the samples
    assert wait_until(lambda: all(not (marker_root / f.id / "restore.sh").exists() for f in (load, exits, held)), 10)
    assert sorted(p.name for p in (marker_root / load.id).iterdir()) == ["kind", "samples"]

    out = sh(faults.restore_script_for(None, ""), root).stdout
    summaries = evidence.summarise_loads(out.splitlines())
    assert summaries[load.id]["took_effect"] and summaries[load.id]["load_cpu_percent"] >= 10
    assert summaries[held.id]["took_effect"] and summaries[held.id]["load_memory_mb"] >= 20
    assert not summaries[exits.id]["took_effect"] and summaries[exits.id]["load_cpu_percent"] == 0
    assert all(2 <= s["samples"] <= 3 for s in summaries.values())
    assert list(marker_root.iterdir()) == [] and list(root.glob("[0-9]*")) == []  # nothing else written


def test_a_rollback_before_the_timer_stops_the_sampler_with_the_load(root):
    load = system.stress_cpu_fault("stress-cpu", 60, 1)
    sh(load.render(), root)
    time.sleep(1.5)
    out = sh(faults.restore_script_for([load.id], "stress-"), root).stdout.splitlines()
    assert out[0] == load.id and evidence.summarise_loads(out)[load.id]["samples"] >= 1
    time.sleep(1.2)  # a sampler left running would write its marker again
    assert list(Path(faults.MARKER_ROOT).iterdir()) == []


def test_the_boot_identity_is_the_kernel_s_boot_and_pid_1_s_start(tmp_path):
    first, again = sh(evidence.BOOT_IDENTITY, tmp_path).stdout.split(), sh(evidence.BOOT_IDENTITY, tmp_path).stdout.split()
    assert first == again and len(first) == 2 and first[1].isdigit()
    assert first[0] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def test_before_any_fault_the_evidence_probes_have_nothing_to_prove():
    assert wait_for_reboot(["10.0.0.5"])["proved"] is True
    assert load_observed(["10.0.0.5"])["proved"] is True
    nothing = faults_observed()
    assert nothing["all_seen"] is True and nothing["proven"] is None and nothing["faults"] == []


# -- against the lab: real sshd, real PID namespaces ----------------------------------------------


def test_a_lab_reboot_gives_a_new_boot_identity(lab, chaos_args):
    target = lab.hosts[2]
    rebooted = reboot_host([target.address], **chaos_args)["hosts"][0]
    proof = wait_for_reboot([target.address], timeout=30, **chaos_args)["rebooted"][0]
    assert proof["boot_before"] == rebooted["boot_before"] != proof["boot_after"]
    # the kernel's boot id stays: the lab's hosts reboot as PID namespaces
    assert proof["boot_before"].split()[0] == proof["boot_after"].split()[0]
    assert 0 < proof["answered_after_seconds"] < 20


def test_a_reboot_command_that_does_nothing_is_caught(lab, chaos_args):
    target = lab.hosts[2]
    reboot_host([target.address], configuration={**chaos_args["configuration"], "reboot_command": "true"},
                secrets=chaos_args["secrets"])
    proof = wait_for_reboot([target.address], timeout=4, **chaos_args)
    assert proof["proved"] is False and proof["rebooted"] == []
    assert re.match(r".*no reboot seen: the boot identity is still .* \(its SSH port never closed\)",
                    proof["not_rebooted"][0]["why"])
    with pytest.raises(ActivityFailed, match="was rebooted in this run: give wait_for_reboot the targets"):
        wait_for_reboot([lab.hosts[1].address], timeout=4, **chaos_args)


def test_loads_are_measured_on_the_host(lab, chaos_args):
    target = lab.hosts[1].address

    seen: dict = {}

    def observed() -> bool:
        seen.update((load["kind"], load) for load in load_observed([target], min_cpu_percent=10, min_megabytes=32,
                                                                   **chaos_args)["loads"])
        # the host's load average (lxcfs's, its own) moves on lxcfs's own clock, every few seconds
        return seen["stress-cpu"]["host_load_average_max"] > 0

    stress_cpu([target], duration=30, workers=1, **chaos_args)
    stress_memory([target], megabytes=64, duration=30, **chaos_args)
    try:
        time.sleep(3.5)
        assert wait_until(observed, 15, step=1) is not None, f"the host's load average stayed 0: {seen}"
        assert seen["stress-cpu"]["load_cpu_percent"] >= 10 and seen["stress-memory"]["load_memory_mb"] >= 32
        assert seen["stress-cpu"]["samples"] >= 3
        short = load_observed([target], min_megabytes=100_000, **chaos_args)
        assert short["proved"] is False and "MB; check that its command runs" in short["problems"][0]
    finally:  # healed here, not by the 30 s timer: the next tests on this host check that nothing is left
        restored = faults.restore([Host(target)], SSHSettings.from_chaos(**chaos_args))
    assert sorted(f["kind"] for f in restored["observed"][target].values()) == ["stress-cpu", "stress-memory"]
    gone = load_observed([target], **chaos_args)
    assert gone["proved"] is False and "left no sample" in gone["problems"][0]
    assert markers(lab, lab.hosts[1]) == []


def test_network_effect_sees_a_cut_and_a_loss_from_a_peer(lab, chaos_args):
    target, peer = lab.hosts[0], lab.hosts[1]
    assert network_effect([target.address], from_host=peer.address, attempts=5, **chaos_args)["loss_percent"] == 0
    cut_network([target.address], duration=30, **chaos_args)  # keep_ssh: the controller still reaches it
    try:
        from_peer = network_effect([target.address], from_host=peer.address, attempts=5, min_loss_percent=100,
                                   **chaos_args)
        assert from_peer["unreachable"] is True and from_peer["loss_percent"] == 100
        judged = faults_observed(**chaos_args)
        assert judged["all_seen"] is True and judged["proven"] is True, judged
        assert [entry["what"] for entry in judged["evidence"]] == [
            f"network effect on {target.address} (ping from {peer.address})"]
        from_controller = network_effect([target.address], port=22, attempts=3, **chaos_args)
        assert from_controller["unreachable"] is False  # the SSH path kept open
    finally:
        restore_network([target.address], **chaos_args)
    lose_packets([target.address], percent=50, duration=30, direction="ingress", **chaos_args)
    try:
        lossy = network_effect([target.address], from_host=peer.address, attempts=40, interval=0.05, **chaos_args)
        assert 20 <= lossy["loss_percent"] <= 80, lossy
    finally:
        restore_network([target.address], **chaos_args)
