"""Each SSH failure is a distinct, clear error naming the host; nothing is injected."""

from __future__ import annotations

import errno
import re
import socket
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from chaosali.host.actions import (
    cut_network, delay_network, limit_bandwidth, lose_packets, restore_network, stop_service, stress_cpu,
)
from chaosali.host.ssh import SSHSettings
from chaosali.safety import revert
from helpers import ping


def _other_key(path: Path) -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    )
    return str(path)


def test_wrong_key_is_an_authentication_error_and_the_revert_has_nothing_to_check(lab, chaos_args, tmp_path):
    chaos_args["secrets"]["key_path"] = _other_key(tmp_path / "wrong")
    with pytest.raises(ActivityFailed, match=r"10\.214\.0\.11: authentication failed for user 'root'"):
        cut_network([lab.hosts[0].address], duration=30, **chaos_args)
    assert ping(lab.hosts[0].address) == 1
    # nothing ran there, so nothing can be left: the run's revert is proven, not "unchecked"
    proof = revert.verify()
    assert (proof["left_behind"], proof["checked"]) == (revert.NOTHING, [])


def test_unknown_host_key_is_refused_unless_accepted_explicitly(lab, chaos_args, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    chaos_args["configuration"]["ssh_known_hosts"] = str(empty)
    with pytest.raises(ActivityFailed, match="unknown host key: 10.214.0.11 is not in"):
        restore_network([lab.hosts[0].address], **chaos_args)
    chaos_args["configuration"]["ssh_accept_unknown_hosts"] = True
    assert restore_network([lab.hosts[0].address], **chaos_args)["restored"] == {lab.hosts[0].address: []}


def test_host_key_mismatch_is_its_own_error(lab, chaos_args, tmp_path):
    # host2's key filed under host1's address: what a reinstalled or impersonated host looks like
    second_key = (lab.host_dir(lab.hosts[1]) / "ssh_host_ed25519_key.pub").read_text()
    known = tmp_path / "known_hosts"
    known.write_text(f"{lab.hosts[0].address} {second_key}")
    chaos_args["configuration"]["ssh_known_hosts"] = str(known)
    with pytest.raises(ActivityFailed, match="host key mismatch: 10.214.0.11 presented a ssh-ed25519 key"):
        restore_network([lab.hosts[0].address], **chaos_args)


def test_refused_port_is_its_own_error(lab, chaos_args):
    with pytest.raises(ActivityFailed, match=r"10\.214\.0\.11:2222: connection refused on port 2222"):
        restore_network([f"{lab.hosts[0].address}:2222"], **chaos_args)


@pytest.mark.parametrize(
    "action, arguments, problem",
    [
        (cut_network, {"peers": ["10.0.0.1; reboot"]}, "peer '10.0.0.1; reboot' is not an IPv4 address"),
        (cut_network, {"ports": ["22 && reboot"]}, "ports: port '22 && reboot' must be a whole number"),
        (cut_network, {"direction": "in$(reboot)"}, "direction 'in$(reboot)' must be one of"),
        (cut_network, {"targets": ["127.0.0.1;reboot"]}, "address '127.0.0.1;reboot' is not a host name"),
        (cut_network, {"targets": ["root`id`@127.0.0.1"]}, "user 'root`id`' is not a user name"),
        (cut_network, {"duration": "10; reboot"}, "duration (seconds) '10; reboot' must be a number"),
        # strict numbers: no NaN, infinity, booleans or digits other than ASCII ones
        (cut_network, {"duration": "nan"}, "duration (seconds) 'nan' must be a number above 0"),
        (cut_network, {"duration": float("inf")}, "duration (seconds) inf must be a number above 0"),
        (cut_network, {"duration": True}, "duration (seconds) True must be a number above 0"),
        (cut_network, {"ports": ["\u0662\u0662"]}, "ports: port '\u0662\u0662' must be a whole number"),
        (cut_network, {"keep_ssh": "sometimes"}, "keep_ssh must be true or false, not 'sometimes'"),
        (cut_network, {"targets": ["127.0.0.1:0"]}, "port '0' must be a whole number from 1 to 65535"),
        (lose_packets, {"percent": float("nan")}, "percent nan must be a number above 0 and at most 100"),
        (limit_bandwidth, {"rate": "\u0661mbit"}, "rate '\u0661mbit' is not a tc value: ASCII digits and a unit"),
        (limit_bandwidth, {"burst": "32kb\n"}, "burst '32kb\\n' is not a tc value"),
        (limit_bandwidth, {"interface": "eth0;reboot"}, "interface 'eth0;reboot' is not a network interface name"),
        (delay_network, {"delay": "100ms; reboot"}, "delay '100ms; reboot' is not a tc value"),
        (stress_cpu, {"workers": 1.5}, "workers 1.5 must be a whole number from 0 to 1024"),
        (stop_service, {"service": "kubelet\n"}, "service 'kubelet\\n' is not a service name"),
        (restore_network, {"fault_id": "chaosali-1a2b3c4d\n"}, "fault id 'chaosali-1a2b3c4d\\n' is not a chaosali"),
    ],
)
def test_wrong_arguments_are_refused_before_any_ssh_call(action, arguments, problem):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        arguments = {"targets": [f"127.0.0.1:{listener.getsockname()[1]}"], **arguments}
        with pytest.raises(ActivityFailed, match=re.escape(problem)):
            action(**arguments)
        with pytest.raises(BlockingIOError) as nobody:
            listener.accept()  # nobody knocked: the refusal came before any connection
        assert nobody.value.errno == errno.EAGAIN


@pytest.mark.parametrize("timeout", ["nan", -1, float("inf"), 0, True, "5s"])
def test_an_ssh_timeout_that_would_mean_no_timeout_or_no_connection_is_refused(timeout):
    for key in ("ssh_connect_timeout", "ssh_command_timeout"):
        with pytest.raises(ActivityFailed, match=re.escape(f"configuration {key} (seconds) {timeout!r} must be")):
            SSHSettings.from_chaos({key: timeout}, {})
    assert SSHSettings.from_chaos({"ssh_connect_timeout": "2.5"}, {}).connect_timeout == 2.5


def test_a_jump_host_carries_the_connection(lab, chaos_args):
    from chaosali.host.ssh import Host, SSHSettings, run_script

    target, bastion, _ = lab.hosts
    via = {**chaos_args, "secrets": {**chaos_args["secrets"], "jump_host": bastion.address}}
    settings = SSHSettings.from_chaos(via["configuration"], via["secrets"])
    # the target sees the connection coming from the bastion, not from the controller
    assert run_script(Host(target.address), 'echo "$CHAOSALI_SSH_PEER"', settings).strip() == bastion.address
    # keep_ssh then keeps the bastion's path open: the rollback still gets in
    output = cut_network([target.address], duration=60, **via)
    assert restore_network([target.address], **via)["restored"][target.address] == [output["fault_id"]]


def test_an_unreachable_jump_host_is_named(lab, chaos_args):
    bastion = f"{lab.hosts[1].address}:2222"
    via = {**chaos_args, "secrets": {**chaos_args["secrets"], "jump_host": bastion}}
    with pytest.raises(ActivityFailed, match=f"jump host {re.escape(bastion)}: connection refused on port 2222"):
        restore_network([lab.hosts[0].address], **via)
