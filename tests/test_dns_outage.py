"""DNS outage: cut_network with ports [53] drops UDP and TCP alike, proved against a UDP and TCP
service on port 53 in a peer lab host; and the shipped drill, experiments/dns-outage.json."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Iterator

import pytest

from chaosali.host.actions import cut_network
from conftest import chaos_run, journal_of, passed, tcp_answers, wait_until

# a port-53 server of the test's own: it answers each UDP datagram and each TCP message with the
# same bytes, as a DNS server answers a query with its id
SERVER = """
import socket, sys, threading
address = sys.argv[1]
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind((address, 53))
tcp = socket.create_server((address, 53))
def serve_tcp():
    while True:
        connection, _ = tcp.accept()
        with connection:
            connection.sendall(connection.recv(512))
threading.Thread(target=serve_tcp, daemon=True).start()
print("ready", flush=True)
while True:
    data, peer = udp.recvfrom(512)
    udp.sendto(data, peer)
"""
# asked from a lab host's network namespace: does the server answer by UDP, by TCP? and its sshd?
CLIENT = """
import json, socket, sys
address, answers = sys.argv[1], {}
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.settimeout(1)
try:
    udp.sendto(b"\\x12\\x34query", (address, 53)); answers["udp"] = udp.recv(512) == b"\\x12\\x34query"
except OSError:
    answers["udp"] = False
try:
    with socket.create_connection((address, 53), timeout=1) as tcp:
        tcp.settimeout(1); tcp.sendall(b"\\x00\\x05query"); answers["tcp"] = tcp.recv(512) == b"\\x00\\x05query"
except OSError:
    answers["tcp"] = False
try:  # another port of the same peer: only port 53 may be cut
    socket.create_connection((address, 22), timeout=1).close(); answers["ssh"] = True
except OSError:
    answers["ssh"] = False
print(json.dumps(answers))
"""


def in_host(host, *argv: str) -> list[str]:
    """argv in the host's network namespace (nsenter: ``ip netns exec`` would pin later namespaces)."""
    return ["nsenter", f"--net=/run/netns/{host.namespace}", *argv]


@pytest.fixture
def dns_server(lab) -> Iterator:
    server_host = lab.hosts[1]
    server = subprocess.Popen(in_host(server_host, sys.executable, "-c", SERVER, server_host.address),
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == "ready"
    yield server_host
    server.kill()
    server.wait()


def answers(client, server) -> dict:
    out = subprocess.run(in_host(client, sys.executable, "-c", CLIENT, server.address),
                         capture_output=True, text=True, timeout=10)
    return json.loads(out.stdout)


def test_cut_of_port_53_drops_udp_and_tcp_alike(lab, chaos_args, dns_server):
    client = lab.hosts[0]
    assert answers(client, dns_server) == {"udp": True, "tcp": True, "ssh": True}
    cut = cut_network([client.address], ports=[53], duration=4, **chaos_args)
    rules = "\n".join(cut["hosts"][0]["report"])
    assert "-p udp -m multiport --ports 53 -j DROP" in rules and "-p tcp -m multiport --ports 53 -j DROP" in rules
    assert answers(client, dns_server) == {"udp": False, "tcp": False, "ssh": True}
    assert tcp_answers(client.address, 22), "the cut reached more than port 53"
    assert wait_until(lambda: answers(client, dns_server) == {"udp": True, "tcp": True, "ssh": True}, 10) is not None


def test_dns_outage_drill_cuts_the_dns_hosts_and_they_heal(lab, dns_server, tmp_path):
    target = tmp_path / "target.json"
    target.write_text(json.dumps({"configuration": {"dns_hosts": [dns_server.as_target()], "cut_seconds": 4}}))
    journal = journal_of(chaos_run(tmp_path, "dns-outage.json", [lab.vars_path, target]), tmp_path)
    assert passed(journal)
    during = next(r for r in journal["run"] if r["activity"]["name"] == "dns-answers-during-the-outage")
    assert during["output"] is False
    assert answers(lab.hosts[0], dns_server) == {"udp": True, "tcp": True, "ssh": True}
