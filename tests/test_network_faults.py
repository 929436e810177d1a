"""Network faults against the lab: real sshd, real iptables and tc inside network namespaces."""

from __future__ import annotations

import time

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosali.host.actions import cut_network, delay_network, limit_bandwidth, lose_packets, restore_network
from helpers import chaosali_chains, markers, ping, tcp_answers, wait_until


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


def test_delay_without_netem_is_a_clear_error_and_leaves_nothing(lab, chaos_args):
    target = lab.hosts[0]
    with pytest.raises(ActivityFailed, match="no sch_netem"):
        delay_network([target.address], delay="100ms", duration=30, **chaos_args)
