"""Network faults against the lab: real sshd, real iptables and tc inside network namespaces."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosali.host.actions import cut_network, delay_network, limit_bandwidth, lose_packets, restore_network
from chaosali.host.preflight import check_hosts
from chaosali.host.ssh import Host, run_script
from helpers import chaosali_chains, markers, ping, settings, tcp_answers, wait_until


def test_cut_host_stops_answering_neighbours_do_not_and_it_heals_alone(lab, chaos_args):
    target, neighbour, third = lab.hosts
    output = cut_network([target.address], duration=4, keep_ssh=False, **chaos_args)
    cut_at = time.monotonic()

    assert output["fault_id"].startswith("chaosali-")
    assert output["hosts"][0]["ok"] and any(command.endswith("-j DROP") for command in output["commands"])
    assert wait_until(lambda: not tcp_answers(target.address, timeout=0.3), 3) is not None
    assert ping(target.address) == 0
    assert ping(target.address, namespace=neighbour.namespace) == 0
    assert not tcp_answers(target.address, timeout=0.5)
    # neighbours are untouched, between themselves and from the root namespace
    assert ping(neighbour.address) == 1 and tcp_answers(neighbour.address)
    assert ping(third.address, namespace=neighbour.namespace) == 1

    # no controller action from here: the host's own timer heals it
    healed = wait_until(lambda: tcp_answers(target.address, timeout=0.3), 10)
    assert healed is not None, "the host did not heal by itself"
    assert time.monotonic() - cut_at < 4 + 3
    assert ping(target.address, namespace=neighbour.namespace) == 1
    assert markers(lab, target) == [] and chaosali_chains(target) == []


def test_restore_heals_at_once_and_twice_and_with_nothing_injected(lab, chaos_args):
    target = lab.hosts[0]
    assert restore_network([target.address], **chaos_args) == {"restored": {target.address: []}}

    output = cut_network([target.address], duration=60, **chaos_args)  # keep_ssh: the rollback gets in
    assert ping(target.address) == 0
    assert tcp_answers(target.address), "keep_ssh must leave the controller's SSH path open"

    started = time.monotonic()
    restored = restore_network([target.address], **chaos_args)
    assert restored["restored"][target.address] == [output["fault_id"]]
    assert ping(target.address) == 1
    assert time.monotonic() - started < 5
    assert restore_network([target.address], fault_id=output["fault_id"], **chaos_args)["restored"] == {
        target.address: []
    }


def test_cut_only_one_peer_and_one_direction(lab, chaos_args):
    target, peer, other = lab.hosts
    output = cut_network([target.address], duration=30, peers=[peer.address], direction="ingress", **chaos_args)
    try:
        assert ping(target.address, namespace=peer.namespace) == 0
        assert ping(target.address, namespace=other.namespace) == 1
        assert ping(target.address) == 1
    finally:
        restore_network([target.address], fault_id=output["fault_id"], **chaos_args)
    assert ping(target.address, namespace=peer.namespace) == 1


def test_cut_only_a_port(lab, chaos_args):
    target, peer, _ = lab.hosts
    # keep_ssh off: the only path to port 22 is cut, ping still goes through
    output = cut_network([target.address], duration=4, ports=[22], keep_ssh=False, **chaos_args)
    assert wait_until(lambda: not tcp_answers(target.address, timeout=0.3), 3) is not None
    assert ping(target.address) == 1
    assert wait_until(lambda: tcp_answers(target.address, timeout=0.3), 8) is not None
    assert output["hosts"][0]["ok"]


def test_measured_loss_is_close_to_the_requested_percentage(lab, chaos_args):
    target = lab.hosts[0]
    output = lose_packets([target.address], percent=50, duration=60, direction="ingress", **chaos_args)
    try:
        received = ping(target.address, count=200, interval=0.01)
    finally:
        restore_network([target.address], fault_id=output["fault_id"], **chaos_args)
    # binomial(200, 0.5): 3.5 standard deviations either side
    assert 75 <= received <= 125, f"{received} of 200 pings came back with 50 % loss requested"
    assert ping(target.address, count=20, interval=0.01) == 20


def test_one_unreachable_host_of_three_restores_the_others_and_names_it(lab, chaos_args):
    missing = "10.214.0.99"  # in the lab's range, nobody there
    chaos_args["configuration"]["ssh_connect_timeout"] = 2
    targets = [lab.hosts[0].address, lab.hosts[1].address, missing]
    with pytest.raises(ActivityFailed) as failure:
        cut_network(targets, duration=60, **chaos_args)
    message = str(failure.value)
    assert missing in message and "1 of 3" in message and "others were restored" in message
    assert lab.hosts[0].address not in message
    for host in lab.hosts[:2]:
        assert ping(host.address) == 1
        assert markers(lab, host) == [] and chaosali_chains(host) == []


def test_limit_bandwidth_installs_tbf_and_restore_removes_it(lab, chaos_args):
    target = lab.hosts[0]
    output = limit_bandwidth([target.address], rate="2mbit", duration=30, **chaos_args)
    report = " ".join(output["hosts"][0]["report"])
    assert report.startswith("eth0: qdisc tbf") and "rate 2Mbit" in report
    restored = restore_network([target.address], **chaos_args)
    assert restored["restored"][target.address] == [output["fault_id"]]


def round_trip_ms(address: str, namespace: str) -> float:
    """The mean round trip of 5 pings from a host's namespace, in ms."""
    out = subprocess.run(["ip", "netns", "exec", namespace, "ping", "-n", "-q", "-c", "5", "-i", "0.2", "-W", "2",
                          address], capture_output=True, text=True).stdout
    return float(out.rsplit("=", 1)[1].split("/")[1])


def test_delay_holds_a_round_trip_through_the_host_for_the_delay_asked_until_the_heal(lab, chaos_args):
    """Where the kernel has no sch_netem (this one), the delay is the NFQUEUE delayer's: a ping's
    reply leaves the delayed host 150 ms late, other hosts' traffic is untouched, and the restore
    ends it at once; the preflight says which mechanism the host uses."""
    target, neighbour, third = lab.hosts
    assert round_trip_ms(target.address, neighbour.namespace) < 20
    output = delay_network([target.address], delay="150ms", duration=60, **chaos_args)
    report = output["hosts"][0]["report"][0]
    netem = report.startswith("eth0: qdisc netem")
    assert netem or report.startswith("eth0: NFQUEUE 3000, the delayer"), report
    assert 150 <= round_trip_ms(target.address, neighbour.namespace) <= 150 + 50
    assert round_trip_ms(third.address, neighbour.namespace) < 20
    checked = check_hosts([Host(target.address)], ["delay_network"], chaos_args["configuration"], settings(lab))
    [row] = [row for row in checked["hosts"][0]["checks"] if row["check"].startswith("delay via ")]
    assert checked["ready"] and row["detail"].startswith("netem" if netem else "nfqueue: no sch_netem here"), row

    restored = restore_network([target.address], **chaos_args)
    assert restored["restored"][target.address] == [output["fault_id"]]
    assert round_trip_ms(target.address, neighbour.namespace) < 20
    assert markers(lab, target) == [] and chaosali_chains(target) == []


def test_a_delayed_host_heals_by_its_own_timer_when_the_controller_is_killed(lab, chaos_args):
    target, neighbour, _ = lab.hosts
    controller = subprocess.Popen(
        [sys.executable, "-c", "import json, sys, time\n"
         "from chaosali.host.actions import delay_network\n"
         "delay_network([sys.argv[1]], delay='150ms', duration=3, **json.loads(sys.argv[2]))\n"
         "print('injected', flush=True)\n"
         "time.sleep(600)\n", target.address, json.dumps(chaos_args)],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert controller.stdout is not None and controller.stdout.readline() == "injected\n"
    finally:
        os.killpg(controller.pid, signal.SIGKILL)
        controller.wait()
    killed = time.monotonic()
    assert round_trip_ms(target.address, neighbour.namespace) >= 150
    # no controller from here: the host's own timer ends the delay, its rules and its delayer
    assert wait_until(lambda: round_trip_ms(target.address, neighbour.namespace) < 20, 8) is not None
    assert time.monotonic() - killed < 3 + 4
    assert markers(lab, target) == [] and chaosali_chains(target) == []
    assert "delayer.py" not in run_script(Host(target.address), "ps -e -o args=", settings(lab))


def test_delay_by_netem_where_the_kernel_has_none_is_a_clear_error_and_leaves_nothing(lab, chaos_args):
    target = lab.hosts[0]
    if "netem" in run_script(Host(target.address), "ls /sys/module | grep sch_netem || true", settings(lab)):
        pytest.skip("this kernel has sch_netem")
    with pytest.raises(ActivityFailed, match="no sch_netem .*use mechanism 'auto' or 'nfqueue'"):
        delay_network([target.address], delay="100ms", duration=30, mechanism="netem", **chaos_args)
