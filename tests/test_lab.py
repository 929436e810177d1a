"""The lab itself, and `chaosali cleanup` after a controller that died and lost its markers."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from chaosali.cli import main
from chaosali.host.actions import cut_network
from chaosali.lab import hosts as lab_hosts
from chaosali.lab.hosts import Lab, LabError
from helpers import chaosali_chains, markers, ping, tcp_answers


def test_up_twice_keeps_the_same_hosts_and_keys(lab):
    key_before = lab.key_path.read_text()
    host_key_before = (lab.host_dir(lab.hosts[0]) / "ssh_host_ed25519_key").read_text()
    again = Lab.load(lab.name, lab.state_root)
    again.up(hosts=3)
    assert [h.address for h in again.hosts] == [h.address for h in lab.hosts]
    assert lab.key_path.read_text() == key_before
    assert (lab.host_dir(lab.hosts[0]) / "ssh_host_ed25519_key").read_text() == host_key_before
    status = again.status()
    assert all(h["sshd"] and h["namespace_exists"] for h in status["hosts"])
    with pytest.raises(LabError, match="is up with 3 hosts"):
        again.up(hosts=4)


def test_each_host_has_its_own_hostname_and_process_table(lab, chaos_args):
    from chaosali.host.ssh import Host, run_script
    from helpers import settings

    names = {run_script(Host(h.address), "hostname", settings(lab)).strip() for h in lab.hosts}
    assert names == {"host1", "host2", "host3"}
    processes = run_script(Host(lab.hosts[0].address), "ps -e -o comm=", settings(lab)).split()
    assert processes.count("sshd") <= 3, "the host sees other hosts' processes"


@pytest.mark.usefixtures("one_test_session_at_a_time")
def test_down_removes_its_own_things_only(tmp_path):
    foreign = "csother-keep"
    subprocess.run(["ip", "netns", "del", foreign], capture_output=True)  # left by a crashed run
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    small = Lab(name="csdown", subnet="10.216.0.0/24", state_root=tmp_path)
    try:
        small.up(hosts=1)
        assert tcp_answers(small.hosts[0].address)
        small.down()
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert "csdown-" not in namespaces and foreign in namespaces
        assert subprocess.run(["ip", "link", "show", "csdown-br"], capture_output=True).returncode != 0
        assert not (tmp_path / "csdown").exists()
        # its hosts' cgroups (their CPUs) and its lxcfs went with it
        assert not [c for c in lab_hosts.CPU_CONTROLLERS if (lab_hosts.CGROUP_ROOT / c / "csdown-host1").exists()]
        assert "csdown" not in Path("/proc/self/mounts").read_text()
        leftover = subprocess.run(["pgrep", "-f", str(tmp_path / "csdown")], capture_output=True, text=True)
        assert leftover.stdout == "", "a process of the lab survived down"
    finally:
        subprocess.run(["ip", "netns", "del", foreign])
        small.down()


def test_workers_get_a_cpu_each_round_robin_and_the_control_plane_shares_every_cpu():
    roles = ["master", "worker", "worker", "lb", "monitor", "worker"]
    assert lab_hosts.cpus_for(roles, [0, 1]) == ["0,1", "0", "1", "0,1", "0,1", "0"]
    assert lab_hosts.cpus_for(["host", "host", "host"], [2, 5]) == ["2", "5", "2"]
    assert lab_hosts.cpus_for(["master", "worker"], [0]) == ["0", "0"]


def test_each_host_runs_on_its_own_cpu_and_counts_only_its_own_processes_time(lab):
    """A busy loop over host1's SSH session runs on host1's CPU, in its cgroup, and only host1's
    /proc/stat (lxcfs: what its node exporter reads) counts it as busy."""
    from chaosali.host.ssh import Host, run_script
    from helpers import settings

    if not all(h.cpus for h in lab.hosts):
        pytest.skip("this machine has no cgroup v1 cpuset: the hosts share every CPU")
    busy_of = "awk '/^cpu /{print $2+$3+$4+$7+$8, $5}' /proc/stat"
    looks = "nproc; grep -c ^processor /proc/cpuinfo; grep cpuset /proc/self/cgroup; grep '^cpu[0-9]' /proc/stat | cut -d ' ' -f 1"
    seen = {h.name: run_script(Host(h.address), looks, settings(lab)).split() for h in lab.hosts}
    for host in lab.hosts:
        nproc, processors, cgroup, *cpus = seen[host.name]
        assert (nproc, processors, cpus) == ("1", "1", [f"cpu{host.cpus}"]), seen
        assert cgroup.endswith(f":cpuset:/{host.namespace}"), seen
    host1, host2 = (Host(h.address) for h in lab.hosts[:2])
    before = {h: [int(n) for n in run_script(h, busy_of, settings(lab)).split()] for h in (host1, host2)}
    # the shell's `times`: the CPU its children used (the loop gets less than 2 s of it when other work
    # shares host1's CPU: the suite's other labs run there too)
    times = run_script(host1, "timeout 2 sh -c 'while :; do :; done'; times", settings(lab)).splitlines()[-1]
    loop = round(100 * sum(60 * float(m) + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", times)))
    after = {h: [int(n) for n in run_script(h, busy_of, settings(lab)).split()] for h in (host1, host2)}
    busy = {h: after[h][0] - before[h][0] for h in (host1, host2)}  # clock ticks (1/100 s) of work
    assert loop >= 20, times  # it ran
    assert busy[host1] >= 0.8 * loop and busy[host2] < 0.5 * loop, (loop, busy)


def test_not_root_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(lab_hosts.os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="the lab needs root"):
        Lab(name="csnoroot").up(hosts=1)


def test_cleanup_restores_faults_and_removes_orphan_chains(lab, chaos_args, capsys):
    target, orphan_host, _ = lab.hosts
    cut_network([target.address], duration=120, **chaos_args)
    # a fault whose marker was lost: only its chain is left behind
    netns = ["ip", "netns", "exec", orphan_host.namespace, "iptables", "-w"]
    subprocess.run(netns + ["-N", "chaosali-0badc0de-in"], check=True)
    subprocess.run(netns + ["-A", "chaosali-0badc0de-in", "-s", lab.gateway, "-p", "icmp", "-j", "DROP"], check=True)
    subprocess.run(netns + ["-I", "INPUT", "1", "-j", "chaosali-0badc0de-in"], check=True)
    subprocess.run(netns + ["-I", "FORWARD", "1", "-j", "chaosali-0badc0de-in"], check=True)  # a drop fault's too
    assert ping(target.address) == 0 and ping(orphan_host.address) == 0

    # and the private kubeconfig a SIGKILLed run left behind (its pid is gone)
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = Path(tempfile.mkdtemp(prefix=f"chaosali-kubeconfig-{dead.pid}-"))
    alive = Path(tempfile.mkdtemp(prefix=f"chaosali-kubeconfig-{os.getpid()}-"))

    assert main(["cleanup", "--var-file", str(lab.vars_path)]) == 0
    report = capsys.readouterr().out
    assert not orphan.exists() and alive.exists() and str(orphan) in report
    alive.rmdir()
    assert "removed orphan chains ['chaosali-0badc0de-in']" in report
    assert ping(target.address) == 1 and ping(orphan_host.address) == 1
    assert markers(lab, target) == [] and chaosali_chains(target) == [] and chaosali_chains(orphan_host) == []
