"""Service probes against the lab: real HTTP(S) servers in lab hosts, a real nftables DNAT VIP in
the root namespace, real network cuts, and a real kube-apiserver for EndpointSlices."""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from chaoslib.discovery.discover import discover_probes
from chaoslib.exceptions import ActivityFailed
from chaoslib.hypothesis import ensure_hypothesis_tolerance_is_valid, within_tolerance
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chaosali.core.errors import InvalidArgument
from chaosali.host.actions import cut_network, restore_network
from chaosali.service.probes import service_available, vip_members
from helpers import tcp_answers, wait_until

PORT, TLS_PORT = 8080, 8443
VIP, VIP_PORT = "10.214.0.100", 80
NFT_TABLE = "chaosali_vip_test"
TOKEN = "Bearer s3cr3t-token-value"

# A lab host's web server: files from a directory, /status/<code>, and POST echoing what arrived.
SERVER = r'''
import functools, http.server, json, socketserver, ssl, sys

address, port, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]

class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/status/"):
            return self.reply(int(self.path.split("/")[2]), {"status": self.path})
        return super().do_GET()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.reply(200, {"body": body, "content_type": self.headers.get("Content-Type"),
                         "authorization": self.headers.get("Authorization")})

    def reply(self, code, document):
        data = json.dumps(document).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    def server_bind(self):  # HTTPServer's looks its address up in DNS: that hangs in a lab host
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

server = Server((address, port), functools.partial(Handler, directory=directory))
if len(sys.argv) > 4:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[4], sys.argv[5])
    server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
'''


@dataclass
class Web:
    """The lab's web servers: HTTP on two hosts, HTTPS (a lab CA's certificate) on the second."""

    first: str  # address of the first server host
    second: str
    ca_bundle: Path

    def url(self, path: str, address: str | None = None) -> str:
        return f"http://{address or self.first}:{PORT}{path}"

    @property
    def members(self) -> list:
        return [f"{self.first}:{PORT}", {"address": self.second, "port": PORT}]


def make_certificates(directory: Path, address: str) -> None:
    """A lab CA and a server certificate for ``address`` signed by it (PEM files)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    period = {"not_valid_before": now - datetime.timedelta(minutes=5), "not_valid_after": now + datetime.timedelta(days=1)}

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder(subject_name=name("chaosali-test-ca"), issuer_name=name("chaosali-test-ca"),
                                public_key=ca_key.public_key(), serial_number=x509.random_serial_number(), **period)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder(subject_name=name(address), issuer_name=ca.subject, public_key=key.public_key(),
                                serial_number=x509.random_serial_number(), **period)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "server.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@pytest.fixture(scope="module")
def web(lab, tmp_path_factory) -> Web:
    _, first, second = lab.hosts
    root = tmp_path_factory.mktemp("web")
    site, pki = root / "site", root / "pki"
    site.mkdir()
    pki.mkdir()
    (root / "server.py").write_text(SERVER)
    (site / "hello.txt").write_text("hello from the lab\n")
    (site / "health.json").write_text(json.dumps({"status": {"ready": True}, "items": [{"name": "web"}]}))
    (site / "members.json").write_text(
        json.dumps({"pool": {"members": [f"{first.address}:{PORT}", {"address": second.address, "port": PORT}]}})
    )
    make_certificates(pki, second.address)

    servers = [
        (first, PORT, []),
        (second, PORT, []),
        (second, TLS_PORT, [str(pki / "server.pem"), str(pki / "server.key")]),
    ]
    processes = []
    try:
        for host, port, tls in servers:
            # `ip netns exec` execs the server itself: its pid is the one to stop
            processes.append(subprocess.Popen(
                ["ip", "netns", "exec", host.namespace, sys.executable, str(root / "server.py"),
                 host.address, str(port), str(site), *tls],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        for host, port, _ in servers:
            answers = wait_until(lambda host=host, port=port: tcp_answers(host.address, port, timeout=0.3), 10)
            assert answers is not None, f"no server on {host.address}:{port}"
        yield Web(first.address, second.address, pki / "ca.pem")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def vip(web: Web) -> str:
    """An nftables DNAT VIP in the root namespace, round-robin over the two web servers."""
    rules = f"""
    table ip {NFT_TABLE}
    delete table ip {NFT_TABLE}
    table ip {NFT_TABLE} {{
        chain out {{
            type nat hook output priority -100; policy accept;
            ip daddr {VIP} tcp dport {VIP_PORT} dnat to numgen inc mod 2 map {{ 0 : {web.first}, 1 : {web.second} }} : {PORT}
        }}
    }}
    """
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)  # the first two lines clear a leftover
    try:
        yield VIP
    finally:
        subprocess.run(["nft", "delete", "table", "ip", NFT_TABLE], check=True)


class Cuts:
    """Network cuts of lab hosts (the controller's SSH path kept open, so restore gets in)."""

    def __init__(self, chaos_args: dict) -> None:
        self.chaos_args = chaos_args
        self.addresses: list[str] = []

    def cut(self, address: str) -> None:
        self.addresses.append(address)
        cut_network([address], duration=30, **self.chaos_args)
        assert wait_until(lambda: not tcp_answers(address, PORT, timeout=0.3), 5) is not None, "the cut did not take effect"

    def restore(self) -> None:
        if self.addresses:
            restore_network(self.addresses, **self.chaos_args)
            self.addresses = []


@pytest.fixture
def cuts(chaos_args) -> Cuts:
    """Cuts restored at the end of the test, whatever happened."""
    cuts = Cuts(chaos_args)
    yield cuts
    cuts.restore()


# -- service_available ----------------------------------------------------------------------------


def test_status_substring_regex_and_json_path_checks(web: Web):
    ok = service_available(web.url("/hello.txt"), timeout=2)
    assert ok["ok"] is True and ok["status"] == 200 and ok["attempts"] == 1 and ok["reason"] == "HTTP 200"
    assert 0 < ok["elapsed"] < 2
    assert json.loads(json.dumps(ok)) == ok  # lands in the journal as it is

    assert service_available(web.url("/hello.txt"), contains="from the lab")["ok"]
    missing = service_available(web.url("/hello.txt"), contains="from elsewhere")
    assert missing["ok"] is False and missing["status"] == 200 and "does not contain 'from elsewhere'" in missing["reason"]

    assert service_available(web.url("/hello.txt"), pattern=r"^hello from \w+ lab$")["ok"]
    assert "does not match" in service_available(web.url("/hello.txt"), pattern=r"^goodbye")["reason"]

    assert service_available(web.url("/health.json"), json_path="status.ready", json_value=True)["ok"]
    assert service_available(web.url("/health.json"), json_path="$.items.0.name", json_value="web")["ok"]
    assert service_available(web.url("/health.json"), json_path="items.0")["ok"]  # exists is enough
    wrong = service_available(web.url("/health.json"), json_path="items.0.name", json_value="db")
    assert wrong["ok"] is False and wrong["reason"].endswith('is "web", expected "db"')
    assert "missing: no item '3'" in service_available(web.url("/health.json"), json_path="items.3.name")["reason"]
    assert "not JSON" in service_available(web.url("/hello.txt"), json_path="status")["reason"]
    # JSON true is not the number 1
    assert not service_available(web.url("/health.json"), json_path="status.ready", json_value=1)["ok"]


def test_expected_status_codes(web: Web):
    unavailable = service_available(web.url("/status/503"))
    assert unavailable == {**unavailable, "ok": False, "status": 503, "reason": "HTTP 503, expected 200-399"}
    assert service_available(web.url("/status/503"), status=[503, 504])["ok"]
    assert service_available(web.url("/status/302"))["ok"], "a redirect is an answer unless status says otherwise"
    assert service_available(web.url("/nothing-here"), status=404)["ok"]
    assert service_available(web.url("/hello.txt"), status=[204])["reason"] == "HTTP 200, expected 204"


def test_method_body_and_headers_are_sent_but_header_values_never_shown(web: Web, caplog):
    caplog.set_level(logging.DEBUG)
    result = service_available(
        web.url("/echo"), method="post", headers={"Authorization": TOKEN}, json={"ping": 1},
        json_path="authorization", json_value=TOKEN,  # the server saw the token
    )
    assert result["ok"], result
    assert service_available(web.url("/echo"), method="POST", body="ping", json_path="body", json_value="ping")["ok"]
    assert service_available(
        web.url("/echo"), method="POST", json={"ping": 1}, json_path="content_type", json_value="application/json"
    )["ok"]
    # an unreachable service with a token in its headers: the token shows nowhere
    refused = service_available(f"http://{web.first}:9/?token=query-secret", headers={"Authorization": TOKEN}, timeout=1)
    assert refused["ok"] is False and "connection refused" in refused["reason"]
    for shown in (json.dumps(result), json.dumps(refused), caplog.text):
        assert "s3cr3t" not in shown and "query-secret" not in shown


def test_unreachable_service_is_tried_retries_plus_one_times(web: Web, cuts: Cuts):
    cuts.cut(web.first)
    started = time.monotonic()
    result = service_available(web.url("/hello.txt"), timeout=0.5, retries=2, retry_delay=0.2)
    assert result["ok"] is False and result["status"] is None
    assert result["attempts"] == 3
    assert result["reason"] == "no connection within 0.5 s"
    assert 3 * 0.5 + 2 * 0.2 <= result["elapsed"] <= time.monotonic() - started + 0.001  # elapsed is rounded
    # the other server was not cut
    assert service_available(web.url("/hello.txt", web.second), timeout=1)["ok"]


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_is_verified_by_default(web: Web):
    url = f"https://{web.second}:{TLS_PORT}/health.json"
    untrusted = service_available(url, timeout=2)
    assert untrusted["ok"] is False and untrusted["status"] is None
    assert "certificate verify failed" in untrusted["reason"], untrusted["reason"]
    assert service_available(url, verify_tls=False, timeout=2)["ok"]
    trusted = service_available(url, ca_bundle=str(web.ca_bundle), json_path="status.ready", json_value=True, timeout=2)
    assert trusted["ok"] and trusted["status"] == 200


# -- vip_members ------------------------------------------------------------------------------------


def test_vip_members_from_a_list_and_from_an_http_endpoint(web: Web, vip: str):
    result = vip_members(vip, VIP_PORT, members=web.members, timeout=1, vip_attempts=4)
    assert result == {
        "vip": {"address": vip, "port": VIP_PORT, "ok": True, "attempts": 4, "answered": 4},
        "members": [
            {"address": web.first, "port": PORT, "ok": True},
            {"address": web.second, "port": PORT, "ok": True},
        ],
        "total": 2,
        "answering": 2,
    }
    listed = vip_members(vip, VIP_PORT, members_url=web.url("/members.json"), members_path="pool.members", timeout=1)
    assert listed["members"] == result["members"] and listed["vip"]["ok"]

    by_http = vip_members(vip, VIP_PORT, members=web.members, check="http", path="/health.json", timeout=1)
    assert by_http["answering"] == 2 and by_http["vip"]["answered"] == 3
    wrong_path = vip_members(vip, VIP_PORT, members=web.members, check="http", path="/nothing-here", timeout=1)
    assert wrong_path["answering"] == 0 and not wrong_path["vip"]["ok"]
    assert wrong_path["members"][0]["reason"] == "HTTP 404, expected 200-399"


def test_vip_with_a_cut_member_answers_for_some_connections_only(web: Web, vip: str, cuts: Cuts):
    at_least_two = {"type": "range", "target": "answering", "range": [2, 1000000]}
    cuts.cut(web.first)  # HTTP to it is cut, SSH from the controller is not
    result = vip_members(vip, VIP_PORT, members=web.members, timeout=1, vip_attempts=4)
    assert (result["total"], result["answering"]) == (2, 1)
    cut_member, live_member = result["members"]
    assert cut_member == {"address": web.first, "port": PORT, "ok": False, "reason": f"no TCP connection to port {PORT} within 1 s"}
    assert live_member["ok"] is True
    # Round-robin DNAT: the connections it sends to the cut member fail, the others answer.
    # The VIP "answers" when at least one of its attempts did.
    assert result["vip"]["ok"] is True and 0 < result["vip"]["answered"] < 4
    assert not within_tolerance(at_least_two, result)

    cuts.restore()
    healed = vip_members(vip, VIP_PORT, members=web.members, timeout=1, vip_attempts=4)
    assert (healed["answering"], healed["vip"]["answered"]) == (2, 4)
    assert within_tolerance(at_least_two, healed)


def test_members_from_kubernetes_endpoint_slices(web: Web, vip: str, lab, ha_cluster):
    # the HA lab's API: it is in the same pytest-xdist worker as the host lab (tests/conftest.py)
    from kubernetes import client, config

    idle = lab.hosts[0].address  # a lab host with no web server: refuses the connection
    slices = [
        {"name": "chaosali-svc-test-a", "endpoints": [
            {"addresses": [web.first], "conditions": {"ready": True}},
            {"addresses": [web.second], "conditions": {"ready": False}},
        ]},
        {"name": "chaosali-svc-test-b", "endpoints": [{"addresses": [idle]}]},  # readiness unknown
    ]
    api = config.new_client_from_config(config_file=str(ha_cluster.admin_kubeconfig))
    admin = {"kubeconfig_path": str(ha_cluster.admin_kubeconfig)}
    discovery = client.DiscoveryV1Api(api)
    try:
        for item in slices:
            discovery.create_namespaced_endpoint_slice("default", {
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                "metadata": {"name": item["name"], "labels": {"kubernetes.io/service-name": "chaosali-svc-test"}},
                "ports": [{"name": "http", "port": PORT, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}],
                "endpoints": item["endpoints"],
            })
        result = vip_members(vip, VIP_PORT, service="chaosali-svc-test", timeout=1,
                             configuration=admin)
    finally:
        for item in slices:
            try:
                discovery.delete_namespaced_endpoint_slice(item["name"], "default")
            except client.ApiException as error:
                if error.status != 404:
                    raise
        api.close()
    assert (result["total"], result["answering"]) == (3, 2)
    assert [(m["address"], m["port"], m["ready"], m["ok"]) for m in result["members"]] == [
        (web.first, PORT, True, True), (web.second, PORT, False, True), (idle, PORT, True, False),
    ]
    assert result["members"][2]["reason"] .startswith("TCP connection to port ") and result["members"][2]["reason"].endswith(" failed: connection refused")

    none = vip_members(vip, VIP_PORT, service="chaosali-no-such-svc", timeout=1,
                       configuration=admin)
    assert (none["total"], none["answering"], none["vip"]["ok"]) == (0, 0, True)


def test_members_that_cannot_be_listed_fail_the_probe(web: Web, vip: str):
    with pytest.raises(ActivityFailed, match=r"member list at .*: HTTP 404"):
        vip_members(vip, VIP_PORT, members_url=web.url("/nothing.json"), timeout=1)
    with pytest.raises(ActivityFailed, match="no key 'servers'"):
        vip_members(vip, VIP_PORT, members_url=web.url("/members.json"), members_path="pool.servers", timeout=1)
    with pytest.raises(InvalidArgument, match="no kubeconfig found"):
        vip_members(vip, VIP_PORT, service="web", configuration={"kubeconfig_path": "/nonexistent/kubeconfig"})


# -- tolerances, discovery and arguments (no lab) -------------------------------------------------


def test_documented_tolerances_work_with_chaoslib():
    up = {"ok": True, "status": 200, "elapsed": 0.01, "attempts": 1, "reason": "HTTP 200"}
    down = {"ok": False, "status": 503, "elapsed": 0.01, "attempts": 1, "reason": "HTTP 503, expected 200-399"}
    assert within_tolerance(200, up) and not within_tolerance(200, down)
    assert within_tolerance([200, 204], up) and not within_tolerance([200, 204], {**up, "status": 201})  # a set, not a range
    vip = {"vip": {"address": VIP, "port": 80, "ok": True, "attempts": 3, "answered": 2},
           "members": [], "total": 3, "answering": 2}
    at_least_two = {"type": "range", "target": "answering", "range": [2, 1000000]}
    ensure_hypothesis_tolerance_is_valid(at_least_two)
    assert within_tolerance(at_least_two, vip) and not within_tolerance(at_least_two, {**vip, "answering": 1})

    pytest.importorskip("jsonpath2", reason="jsonpath tolerances need chaostoolkit-lib[jsonpath]")
    for tolerance, matches, misses in [
        ({"type": "jsonpath", "path": "$.ok", "expect": True}, up, down),
        ({"type": "jsonpath", "path": "$[?(@.answering >= 2)]"}, vip, {**vip, "answering": 1}),
        ({"type": "jsonpath", "path": "$[?(@.answering >= @.total)]"}, {**vip, "answering": 3}, vip),
        ({"type": "jsonpath", "path": "$.vip.ok", "expect": True}, vip, {**vip, "vip": {**vip["vip"], "ok": False}}),
    ]:
        ensure_hypothesis_tolerance_is_valid(tolerance)
        assert within_tolerance(tolerance, matches) and not within_tolerance(tolerance, misses), tolerance


def test_discovery_shows_both_probes_with_docs_and_types():
    probes = {probe["name"]: probe for probe in discover_probes("chaosali.service.probes")}
    assert set(probes) == {"service_available", "vip_members"}
    for probe in probes.values():
        assert probe["doc"] and probe["return_type"] == "mapping"
        arguments = {argument["name"]: argument for argument in probe["arguments"]}
        assert list(arguments)[-2:] == ["configuration", "secrets"]
        json.dumps(probe)  # defaults are JSON
    assert probes["service_available"]["arguments"][0] == {"name": "url", "type": "string"}
    assert {"name": "timeout", "default": 2.0, "type": "number"} in probes["vip_members"]["arguments"]


@pytest.mark.parametrize("arguments, message", [
    ({"url": "10.214.0.12:8080/health"}, "is not a valid http:// or https:// URL"),
    ({"url": "ftp://10.214.0.12/"}, "is not a valid http"),
    ({"url": "http://10.214.0.12:99999/"}, "port from 1 to 65535"),
    ({"url": "http://user:pw@10.214.0.12:0x/?t=1"}, "'<malformed URL>'"),
    ({"url": "http://h/", "method": "GET /x"}, "not an HTTP method"),
    ({"url": "http://h/", "body": "a", "json": {"a": 1}}, "either body"),
    ({"url": "http://h/", "status": [200, 1000]}, "HTTP status code"),
    ({"url": "http://h/", "pattern": "("}, "not a regular expression"),
    ({"url": "http://h/", "json_path": "a..b"}, "dotted path"),
    ({"url": "http://h/", "retries": -1}, "retries -1 must be a whole number"),
    ({"url": "http://h/", "timeout": 0}, r"timeout \(seconds\) 0 must be a number above 0"),
    ({"url": "http://h/", "ca_bundle": "/nonexistent/ca.pem"}, "is not a file"),
    ({"url": "http://h/", "headers": {"Authorization": "Bearer x\r\nX-Evil: 1"}}, "the value of Authorization must be"),
])
def test_service_available_refuses_malformed_arguments(arguments, message):
    with pytest.raises(InvalidArgument, match=message) as refused:
        service_available(**arguments)
    assert "Bearer" not in str(refused.value) and "pw" not in str(refused.value)


@pytest.mark.parametrize("arguments, message", [
    ({"port": 0, "members": []}, "vip port 0 must be a whole number from 1 to 65535"),
    ({"port": "http", "members": []}, "port 'http' must be"),
    ({"check": "udp", "members": []}, "check 'udp' must be one of tcp, http, https"),
    ({}, "exactly one way"),
    ({"members": [], "service": "web"}, "exactly one way"),
    ({"members": ["10.214.0.12:0"]}, "port '0' must be"),
    ({"members": ["10.214.0.12:80:90"]}, "not a host name or an IP address"),
    ({"members": [{"port": 80}]}, "is not a member"),
    ({"members": "10.214.0.12:8080"}, "must be a list"),
    ({"members_url": "members.json"}, "members_url 'members.json' is not a valid"),
    ({"service": "web;rm"}, "not a Kubernetes name"),
    ({"service": "web", "namespace": "a,b=c"}, "not a Kubernetes name"),
    ({"check": "http", "path": "health", "members": []}, "must be a URL path starting with '/'"),
    ({"vip_attempts": 0, "members": []}, "vip_attempts 0 must be"),
])
def test_vip_members_refuses_malformed_arguments(arguments, message):
    with pytest.raises(InvalidArgument, match=message):
        vip_members(**{"vip": VIP, "port": VIP_PORT, **arguments})


def test_vip_members_refuses_a_malformed_vip():
    with pytest.raises(InvalidArgument, match="vip 'a b' is not a host name"):
        vip_members("a b", 80, members=[])


def test_the_impact_recorder_measures_the_availability_a_cut_member_leaves_behind_the_vip(
    web: Web, vip: str, cuts: Cuts, ha_cluster
):
    from chaosali.cluster.api import new_api_client
    from chaosali.impact.measures import measure
    from chaosali.impact.recorder import HttpTarget, Recorder, Scope
    from chaosali.core.http import check

    request, expect = check(f"http://{vip}:{VIP_PORT}/health.json", timeout=0.5)
    configuration = {"kubeconfig_path": str(ha_cluster.admin_kubeconfig)}
    recorder = Recorder(lambda: new_api_client(configuration, retries=0), Scope(()),
                        http_targets=(HttpTarget("vip", request, expect, rate=10),))
    cuts.cut(web.first)
    recorder.start()
    try:
        assert wait_until(lambda: recorder.recording()["http"]["vip"]["samples"] >= 12, 30)
    finally:
        recorder.stop()
    vip_seen = measure(recorder.recording())["http"]["vip"]
    # round-robin DNAT over two members, one cut: every other new connection fails
    assert 30 <= vip_seen["availability"] <= 70, vip_seen
    assert 0 < vip_seen["p50"] <= vip_seen["p95"] <= vip_seen["p99"] <= 1.0
    assert vip_seen["longest_failure_streak"] <= 2 and vip_seen["error_windows"]
