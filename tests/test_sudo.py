"""Drills as a non-root user through sudo, and the preflight (`chaosali check`, `hosts_ready`),
against the lab's real sshd, sudo, iptables and tc."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from chaosali.cli import main
from chaosali.host.actions import (
    cut_network, reconfigure_kubelet, restore_faults, restore_kubelet, restore_network, stress_cpu,
)
from chaosali.host.probes import hosts_ready
from chaosali.host.ssh import Host, SSHSettings, run_script
from chaosali.lab.hosts import PASSWORD_SUDO_USER, SUDO_USER
from helpers import chaos_run, hidden_tc, markers, ping, settings, tcp_answers, wait_until

SUPPORTED = "cut_network,lose_packets,limit_bandwidth,stop_service,stress_cpu,stress_memory,restart_service,reboot_host"


def as_user(lab_vars: dict, scope: str) -> dict:
    return {"configuration": dict(lab_vars["configuration"]), "secrets": dict(lab_vars["secrets"][scope])}


def test_the_sudo_user_cuts_with_keep_ssh_and_restores(lab, lab_vars):
    target = lab.hosts[0]
    sudo = as_user(lab_vars, "ssh_sudo")
    assert run_script(Host(target.address), "id -u", SSHSettings.from_chaos(**sudo)).strip() == "0"
    out = cut_network([target.address], duration=60, **sudo)
    try:
        assert ping(target.address) == 0, "the cut did not take"
        # the controller's SSH path survived sudo's environment handling: we still get in, as the user
        assert run_script(Host(target.address), "whoami", SSHSettings.from_chaos(**sudo)).strip() == "root"
        rules = " ".join(out["hosts"][0]["report"])
        assert f"-s {lab.gateway}/32 -p tcp -m tcp --dport 22 -j RETURN" in rules
    finally:
        restored = restore_network([target.address], **sudo)["restored"]
    assert restored == {target.address: [out["fault_id"]]} and ping(target.address) == 1


def test_the_sudo_user_stresses_the_cpu_and_ends_it(lab, lab_vars):
    target = lab.hosts[1]
    sudo = as_user(lab_vars, "ssh_sudo")
    fault = stress_cpu([target.address], duration=60, workers=1, **sudo)["fault_id"]
    busy = "ps -e -o args= | grep -c \"^sh -c while\" || true"
    assert int(run_script(Host(target.address), busy, settings(lab))) >= 1
    assert restore_faults([target.address], fault_id=fault, **sudo)["restored"] == {target.address: [fault]}
    assert wait_until(lambda: int(run_script(Host(target.address), busy, settings(lab))) == 0, 5) is not None


def test_the_password_sudo_user_is_refused_before_any_fault(lab, lab_vars):
    target = lab.hosts[2]
    with pytest.raises(Exception) as refused:
        cut_network([target.address], duration=60, **as_user(lab_vars, "ssh_password_sudo"))
    message = str(refused.value)
    assert target.address in message and f"sudo refused user '{PASSWORD_SUDO_USER}'" in message
    assert "NOPASSWD" in message and "log in as root" in message
    assert markers(lab, target) == [] and ping(target.address) == 1


def test_cleanup_as_the_sudo_user(lab, lab_vars, capsys):
    target = lab.hosts[0]
    fault = cut_network([target.address], duration=120, **as_user(lab_vars, "ssh_sudo"))["fault_id"]
    assert main(["cleanup", "--var-file", str(lab.vars_path), "--hosts", f"{SUDO_USER}@{target.address}"]) == 0
    assert f"restored ['{fault}']" in capsys.readouterr().out
    assert ping(target.address) == 1


def test_sigkill_of_chaos_run_as_the_sudo_user_the_host_heals_on_its_timer(lab, lab_vars, tmp_path):
    target = lab.hosts[0]
    override = tmp_path / "sudo.json"
    override.write_text(json.dumps({"configuration": {"target_hosts": [target.as_target()]},
                                    "secrets": {"ssh": lab_vars["secrets"]["ssh_sudo"]}}))
    run = chaos_run(tmp_path, "host-netcut.json", [lab.vars_path, override], "--var", "cut_seconds:int=5",
                    start_new_session=True)
    cut_seen = wait_until(lambda: not tcp_answers(target.address, timeout=0.3), 30)
    assert cut_seen is not None, "the cut never took effect"
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    killed = time.monotonic()
    assert wait_until(lambda: tcp_answers(target.address, timeout=0.3), 20) is not None
    assert time.monotonic() - killed < 5 + 3 and ping(target.address) == 1


def test_every_lab_host_passes_the_check_for_what_it_supports(lab, capsys):
    for scope in ("ssh", "ssh_sudo"):
        assert main(["check", "--var-file", str(lab.vars_path), "--secrets", scope, "--faults", SUPPORTED]) == 0
        assert "ready: every host can take and heal" in capsys.readouterr().out
    # this kernel has no sch_netem: the NFQUEUE delayer run by the Python the lab's var file names delays
    assert main(["check", "--var-file", str(lab.vars_path), "--faults", "delay_network", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [h["address"] for h in report["hosts"]] == [h.address for h in lab.hosts]
    assert [host["faults"][0]["ready"] for host in report["hosts"]] == [True] * len(lab.hosts)


def test_the_check_names_the_host_and_the_reason(lab, lab_vars, capsys):
    no_tc, read_only, _ = lab.hosts
    drop_in = hidden_tc(lab, no_tc)
    remount = "mkdir -p /run/chaosali && mount --bind /run/chaosali /run/chaosali && mount -o remount,ro,bind /run/chaosali"
    run_script(Host(read_only.address), remount, settings(lab))
    try:
        assert main(["check", "--var-file", str(lab.vars_path), "--secrets", "ssh_sudo",
                     "--faults", "limit_bandwidth,stress_cpu"]) == 1
        text = capsys.readouterr().out
    finally:
        drop_in.unlink()
        run_script(Host(read_only.address), "umount /run/chaosali", settings(lab))
    summary = text.splitlines()[-1]
    assert f"{no_tc.name} ({no_tc.address}): limit_bandwidth" in summary
    assert f"{read_only.name} ({read_only.address}): limit_bandwidth, stress_cpu" in summary
    assert "bandwidth unavailable: tc not found on PATH (/usr/local/bin:/usr/bin:/bin)" in text
    assert "/run/chaosali is not writable: Read-only file system" in text

    assert main(["check", "--var-file", str(lab.vars_path), "--secrets", "ssh_password_sudo",
                 "--hosts", lab.hosts[2].address]) == 1
    text = capsys.readouterr().out
    assert f"{lab.hosts[2].address}: privilege: sudo refused user '{PASSWORD_SUDO_USER}'" in text


def test_a_failed_hosts_ready_stops_the_run_before_any_fault(lab, lab_vars, tmp_path):
    experiment = {
        "title": "hosts_ready guards a cut", "description": "a host that cannot heal stops the run",
        # a var file sets only the configuration an experiment declares
        "configuration": {"lab_hosts": [], "ssh_known_hosts": "~/.ssh/known_hosts"},
        "secrets": {"ssh": {"user": "root"}},
        "steady-state-hypothesis": {"title": "ready", "probes": [{
            "type": "probe", "name": "hosts-ready", "tolerance": True,
            "provider": {"type": "python", "module": "chaosali.host.probes", "func": "hosts_ready", "secrets": ["ssh"],
                         "arguments": {"targets": "${lab_hosts}", "faults": ["cut_network"]}}}]},
        "method": [{"type": "action", "name": "cut", "provider": {
            "type": "python", "module": "chaosali.host.actions", "func": "cut_network", "secrets": ["ssh"],
            "arguments": {"targets": "${lab_hosts}", "duration": 30}}}],
        "rollbacks": [],
    }
    path = tmp_path / "guarded.json"
    path.write_text(json.dumps(experiment))
    read_only = lab.hosts[1]
    run_script(Host(read_only.address), "mkdir -p /run/chaosali && mount --bind /run/chaosali /run/chaosali "
               "&& mount -o remount,ro,bind /run/chaosali", settings(lab))
    try:
        run = subprocess.run(["chaos", "run", "--journal-path", str(tmp_path / "journal.json"), "--var-file",
                              str(lab.vars_path), str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    finally:
        run_script(Host(read_only.address), "umount /run/chaosali", settings(lab))
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["steady_states"]["before"]["steady_state_met"] is False, run.stdout + run.stderr
    assert journal["run"] == [], "a method activity ran"
    report = journal["steady_states"]["before"]["probes"][0]["output"]
    failed = [h for h in report["hosts"] if not h["ready"]]
    assert [h["address"] for h in failed] == [read_only.address]
    assert "Read-only file system" in failed[0]["faults"][0]["reason"] or "not writable" in json.dumps(failed[0])
    assert f"{read_only.name} ({read_only.address}) cannot take cut_network" in (tmp_path / "chaostoolkit.log").read_text()
    for host in lab.hosts:
        assert ping(host.address) == 1 and markers(lab, host) == []


def test_kubelet_misconfig_as_the_sudo_user_and_its_restore(kube):
    lab_vars = json.loads(kube.lab.vars_path.read_text())
    worker = next(h for h in kube.lab.hosts if h.role == "worker")
    sudo = as_user(lab_vars, "ssh_sudo")
    assert hosts_ready([worker.address], ["reconfigure_kubelet", "stop_service"], **sudo) is True
    conf = lambda: run_script(Host(worker.address), "grep server: /etc/kubernetes/kubelet.conf", settings(kube.lab))
    before = conf()
    fault = reconfigure_kubelet([worker.address], apiserver="https://127.0.0.1:6553", duration=60, **sudo)["fault_id"]
    assert "127.0.0.1:6553" in conf()
    assert restore_kubelet([worker.address], **sudo)["restored"] == {worker.address: [fault]}
    assert conf() == before
