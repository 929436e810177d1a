"""Addresses and names from a hostile cluster API or experiment never run as shell (issue 20, 1).

A node whose InternalIP is ``2001:db8::5%$(touch${IFS}pwned)`` made ``network_effect`` run
``touch pwned`` as root on the peer host: Python's ``ipaddress`` takes any text as an IPv6 scope,
and the ping command carried the address unquoted. Every place an address or a name reaches a host
script is fed hostile values here: each is refused before any host is reached, and what is allowed
reaches the command as one argument, exactly as given. Nothing is ever sent to a hostile address.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config

from chaosali.cluster import nodes
from chaosali.core import args
from chaosali.core.errors import InvalidArgument
from chaosali.host import actions, disk, faults, network, probes, process, system
from chaosali.host.ssh import Host, SSHSettings, parse_hosts, run_script
from helpers import sh

PWNED = "pwned-by-a-node-address"
HOSTILE_SCOPES = [f"$(touch${{IFS}}{PWNED})", f"`touch {PWNED}`", f"eth0;touch {PWNED}", "eth0 x", "eth0\n",
                  "-h", "", "a" * 16, "eth0'", "é"]
HOSTILE_ADDRESSES = [f"2001:db8::5%{scope}" for scope in HOSTILE_SCOPES] + [
    f"10.0.0.5;touch {PWNED}", f"$(touch {PWNED})", "-oProxyCommand=x", "10.0.0.5\n", "host name", "[::1]%x",
]


@pytest.mark.parametrize("hostile", HOSTILE_ADDRESSES)
def test_an_address_with_anything_but_an_interface_as_its_scope_is_refused(hostile):
    with pytest.raises(InvalidArgument, match="is not a host name or an IP address"):
        args.address(hostile, "target")
    with pytest.raises(InvalidArgument):
        parse_hosts([{"address": hostile}])


@pytest.mark.parametrize("plain", ["fe80::1%eth0", "fe80::1%2", "fe80::1%br-lab.5@x", "[2001:db8::5]", "10.0.0.5",
                                   "node-1.example"])
def test_plain_addresses_and_scopes_that_name_an_interface_are_taken(plain):
    assert args.address(plain, "target") == plain.strip("[]")


@pytest.mark.parametrize("hostile", HOSTILE_ADDRESSES)
def test_a_node_address_from_the_api_is_refused_naming_the_node(hostile):
    with pytest.raises(ActivityFailed, match="node n1: .*node_ssh_addresses"):
        nodes._ssh_address("n1", {"InternalIP": hostile}, nodes._address_book({}))


@pytest.fixture
def fake_peer(tmp_path, monkeypatch) -> Path:
    """``network_effect``'s peer is this machine's ``sh``, with a ``ping`` that only writes down the
    arguments it was given (one per line) and sends nothing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    argv = tmp_path / "argv"
    (bin_dir / "ping").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {argv}\necho "3 packets transmitted, 3 received"\n')
    (bin_dir / "ping").chmod(0o755)

    def run_here(host: Host, script: str, settings: SSHSettings) -> str:
        done = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, cwd=tmp_path,
                              env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, check=True)
        return done.stdout

    monkeypatch.setattr(probes, "run_script", run_here)
    return argv


@pytest.mark.parametrize("hostile", HOSTILE_ADDRESSES)
def test_network_effect_refuses_a_hostile_target_before_any_peer_runs_anything(hostile, fake_peer, tmp_path):
    with pytest.raises(InvalidArgument, match="is not a host name or an IP address"):
        probes.network_effect([{"address": hostile}], from_host="10.0.0.1", attempts=3)
    assert not fake_peer.exists() and not (tmp_path / PWNED).exists()


@pytest.mark.parametrize("target", ["fe80::1%eth0", "fe80::1%2", "node-1.example", "10.0.0.5"])
def test_network_effect_gives_ping_the_target_as_one_argument(target, fake_peer, tmp_path):
    measured = probes.network_effect([{"address": target}], from_host="10.0.0.1", attempts=3, interval=0.5)
    assert measured["hosts"][0]["answered"] == 3
    assert fake_peer.read_text().splitlines() == ["-n", "-q", "-c", "3", "-i", "0.5", "-W", "1", target]


# Every other place where a value from an experiment or a cluster reaches a host script: each
# builder is fed the hostile value; all must refuse it before a script exists.
BUILDERS = {
    "peers": lambda v: network.drop_fault("network-cut", 10, peers=[v]),
    "interface": lambda v: network.bandwidth_fault("network-bandwidth", 10, "1mbit", "32kb", "50ms", v),
    "apiserver": lambda v: system.kubelet_fault("kubelet-config", 10, {}, apiserver=f"https://{v}:6443"),
    "kubeconfig_path": lambda v: system.kubelet_fault("kubelet-config", 10, {}, apiserver="https://10.0.0.9:6443",
                                                      kubeconfig_path=f"/etc/{v}"),
    "config key": lambda v: system.kubelet_fault("kubelet-config", 10, {}, config_changes={v: "x"}),
    "config value": lambda v: system.kubelet_fault("kubelet-config", 10, {}, config_changes={"maxPods": v}),
    "service": lambda v: system.service_fault("service-stop", 10, {}, v),
    "process": lambda v: process.kill_script(process=v),
    "unit": lambda v: process.kill_script(unit=v),
    "pid_file": lambda v: process.kill_script(pid_file=f"/run/{v}"),
    "disk path": lambda v: disk.fill_fault("disk-fill", 10, f"/var/{v}", megabytes=1),
    "ssh target": lambda v: parse_hosts([f"root@{v}:22"]),
}


@pytest.mark.parametrize("where", BUILDERS)
@pytest.mark.parametrize("hostile", HOSTILE_ADDRESSES)
def test_every_value_that_reaches_a_script_refuses_a_hostile_one(where, hostile):
    with pytest.raises(InvalidArgument):
        BUILDERS[where](hostile)


def test_paths_and_kubelet_edits_reach_the_host_quoted():
    fault = system.kubelet_fault("kubelet-config", 10, {}, config_changes={"maxPods": "30"},
                                 config_path="/var/lib/kubelet/config.yaml")
    assert "sed -i 's#^maxPods:.*$#maxPods: 30#' /var/lib/kubelet/config.yaml" in fault.apply[2]
    assert "printf '%s\\n' 'maxPods: 30' >> /var/lib/kubelet/config.yaml" in fault.apply[2]
    fault = system.kubelet_fault("kubelet-config", 10, {}, apiserver="https://[fd00::9]:6443")
    assert fault.apply[2].startswith("sed -i 's#^") and "#\\1https://[fd00::9]:6443#' " in fault.apply[2]


def test_the_quoted_kubelet_edits_change_the_file_as_before_and_the_restore_puts_it_back(marker_root, tmp_path):
    config_path = tmp_path / "config.yaml"
    config_path.write_text("kind: KubeletConfiguration\nmaxPods: 110\n")
    fault = system.kubelet_fault("kubelet-config", 60, {"service_command": "true {action} {service}"},
                                 config_changes={"maxPods": 30, "failSwapOn": False}, config_path=str(config_path))
    assert sh(fault.render()).returncode == 0
    assert config_path.read_text() == "kind: KubeletConfiguration\nmaxPods: 30\nfailSwapOn: false\n"
    assert sh(faults.restore_script_for([fault.id], "")).returncode == 0
    assert config_path.read_text() == "kind: KubeletConfiguration\nmaxPods: 110\n"


# ---- against the lab's real API server ------------------------------------------------------------


@pytest.fixture
def hostile_node(kube) -> str:
    """A Node object whose status (as a hostile kubelet or API user may write it) gives an
    InternalIP that is a shell command; the selector that finds it."""
    api = config.new_client_from_config(config_file=str(kube.admin_kubeconfig))
    core = client.CoreV1Api(api)
    mark = uuid.uuid4().hex[:8]
    name = f"hostile-{mark}"
    core.create_node({"metadata": {"name": name, "labels": {"chaosali-test": mark}}})
    try:
        core.patch_node_status(name, {"status": {"addresses": [
            {"type": "InternalIP", "address": f"2001:db8::5%$(touch${{IFS}}{PWNED})"},
            {"type": "Hostname", "address": name}]}})
        yield f"chaosali-test={mark}"
    finally:
        core.delete_node(name)
        api.close()


def test_a_hostile_node_address_from_the_real_api_runs_nothing_on_the_peer(kube, kube_chaos, hostile_node):
    peer = kube.lab.hosts[-1]
    settings = SSHSettings(key_path=str(kube.lab.key_path), known_hosts=str(kube.lab.known_hosts))
    query = {"nodes": hostile_node}
    refused = "node hostile-.*: the cluster API's address .* is not a host name or an IP address"
    with pytest.raises(ActivityFailed, match=refused):
        probes.network_effect(query, from_host=peer.address, attempts=1, **kube_chaos)
    with pytest.raises(ActivityFailed, match=refused):
        probes.hosts_reachable(query, **kube_chaos)
    with pytest.raises(ActivityFailed, match=refused):
        actions.cut_network([peer.address], duration=5, peers=query, **kube_chaos)
    with pytest.raises(ActivityFailed, match=refused):
        actions.stop_service(query, service="kubelet", duration=5, **kube_chaos)
    left = run_script(Host(peer.address), f"ls -a ~ / /tmp | grep -c {PWNED} || true", settings)
    assert left.strip() == "0", "the node's address ran as a command on the peer"
