"""DNS outage against the lab's real cluster DNS (CoreDNS, as `chaosali lab up` makes it): cut_network
with ports [53] drops UDP and TCP alike. The shipped drill experiments/dns-outage.json, which proves
that the cluster's names stop resolving during the cut and resolve again after it, runs on the
monitored lab, judged by its alert too (test_monitoring.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Iterator

import pytest
from kubernetes import client as k8s

from chaosali.cluster.api import new_api_client
from chaosali.core import ledger, memory
from chaosali.core.errors import InvalidArgument
from chaosali.host.actions import cut_network
from chaosali.host.probes import names_resolve
from chaosali.impact.probes import faults_observed
from chaosali.lab import dns
from chaosali.lab.hosts import Lab, LabHost
from helpers import chaosali_chains, markers, tcp_answers, wait_until

API_SERVICE_IP = "10.96.0.1"  # the first address of the lab's service range: kubernetes.default
RESOLVED = [API_SERVICE_IP]
# asked from a lab host's network namespace: does the DNS server resolve the name by UDP, by TCP? and
# does the server's sshd answer (only port 53 may be cut)?
CLIENT = """
import json, socket, sys
import dns.exception, dns.resolver
address, name, answers = sys.argv[1], sys.argv[2], {}
for how in ("udp", "tcp"):
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [address]
    try:
        answers[how] = sorted(a.address for a in resolver.resolve(name, "A", tcp=how == "tcp", lifetime=1, search=False))
    except dns.exception.DNSException:
        answers[how] = None
try:
    socket.create_connection((address, 22), timeout=1).close(); answers["ssh"] = True
except OSError:
    answers["ssh"] = False
print(json.dumps(answers))
"""
ANSWERING = {"udp": RESOLVED, "tcp": RESOLVED, "ssh": True}
CUT = {"udp": None, "tcp": None, "ssh": True}


@pytest.fixture
def cluster_lab(kube) -> Iterator[Lab]:
    """The cluster lab of `lab up` (one master, two workers), left clean by every test here."""
    if kube.lab is None:
        pytest.skip("the cluster DNS drill runs in the lab: unset CHAOSALI_TEST_KUBECONFIG")
    yield kube.lab
    for host in kube.lab.hosts:
        assert markers(kube.lab, host) == [], f"{host.name} still has fault markers"
        assert chaosali_chains(host) == [], f"{host.name} still has chaosali chains"


def dns_hosts(kube) -> list[LabHost]:
    """The lab hosts of the kube-dns pods, as the API says."""
    with new_api_client(kube.admin) as api:
        pods = k8s.CoreV1Api(api).list_namespaced_pod(dns.NAMESPACE, label_selector=dns.SELECTOR).items
    nodes = {pod.spec.node_name for pod in pods}
    return [host for host in kube.lab.hosts if host.name in nodes]


def answers(client: LabHost, server: LabHost) -> dict:
    """What ``client`` gets from the DNS server of ``server`` (nsenter: ``ip netns exec`` would pin
    later namespaces)."""
    out = subprocess.run(["nsenter", f"--net=/run/netns/{client.namespace}", sys.executable, "-c", CLIENT,
                          server.address, dns.CHECK_NAME], capture_output=True, text=True, timeout=20)
    return json.loads(out.stdout)


def test_the_lab_runs_coredns_as_kube_dns_on_each_worker(kube, cluster_lab):
    servers = dns_hosts(kube)
    assert sorted(h.name for h in servers) == ["worker1", "worker2"]
    with new_api_client(kube.admin) as api:
        service = k8s.CoreV1Api(api).read_namespaced_service("kube-dns", dns.NAMESPACE)
    assert service.spec.cluster_ip == dns.CLUSTER_IP
    master = cluster_lab.hosts[0]
    for server in servers:
        assert answers(master, server) == ANSWERING
    # nothing outside the cluster's domain: no upstream, so it is refused at once, never forwarded
    outside = names_resolve([servers[0].address], ["example.org"], expect="failing")
    assert outside["proved"] and "answered REFUSED" in outside["hosts"][0]["names"]["example.org."]["error"]
    # a DNS that answers is no outage: "failing" is not proved, and once a fault was injected,
    # faults_observed is told that its expected effect was missed
    with ledger.injecting("network-cut", ["a test's stand-in for a cut that did not take"]) as record:
        record.started = "2026-01-01T00:00:00+00:00"
    answering = names_resolve([h.address for h in servers], expect="failing", tcp=True)
    assert answering["proved"] is False and answering["how"] == "tcp port 53 from the controller"
    judged = faults_observed()
    memory.forget()
    assert judged["all_seen"] is False and "names still resolved" in judged["why"]


@pytest.mark.parametrize("arguments, message", [
    ({"names": []}, "names is empty"),
    ({"names": ["bad..name"]}, "is not a DNS name"),
    ({"names": [7]}, "is not a DNS name"),
    ({"expect": "down"}, "expect 'down' must be one of resolving, failing"),
    ({"port": 0}, "port"),
    ({"timeout": 0}, "timeout"),
    ({"wait": -1}, "wait"),
])
def test_names_resolve_refuses_bad_arguments_before_asking_anyone(arguments, message):
    with pytest.raises(InvalidArgument, match=message):
        names_resolve(["127.0.0.1"], **arguments)


def test_cut_of_port_53_drops_udp_and_tcp_alike_and_heals(kube, cluster_lab):
    server, client = dns_hosts(kube)[0], cluster_lab.hosts[0]
    variables = json.loads(cluster_lab.vars_path.read_text())
    assert answers(client, server) == ANSWERING
    cut = cut_network([server.address], ports=[53], duration=4, configuration=variables["configuration"],
                      secrets=variables["secrets"]["ssh"])
    rules = "\n".join(cut["hosts"][0]["report"])
    assert "-p udp -m multiport --ports 53 -j DROP" in rules and "-p tcp -m multiport --ports 53 -j DROP" in rules
    assert answers(client, server) == CUT
    assert tcp_answers(server.address, 22), "the cut reached more than port 53"
    assert wait_until(lambda: answers(client, server) == ANSWERING, 15) is not None

