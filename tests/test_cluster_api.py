"""The one cluster API layer, without a cluster: the request timeout has one default and refuses
what is no timeout, every request gets it, and an API failure reads the same wherever it happens."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import urllib3
from chaoslib.discovery.discover import discover_probes
from kubernetes.client.rest import ApiException

from chaosali.cluster import api, resources
from chaosali.core.errors import InvalidArgument
from chaosali.lock import lease

HOST = "https://10.0.0.1:6443"
PACKAGE = Path(api.__file__).resolve().parent.parent


def refused(status: int, message: str = "", causes: list | None = None, body: bool = True) -> ApiException:
    error = ApiException(status=status, reason="Reason")
    if body:
        error.body = json.dumps({"kind": "Status", "message": message, "details": {"causes": causes or []}})
    return error


def failure(error: Exception) -> api.ApiFailed:
    with pytest.raises(api.ApiFailed) as caught:
        with api.failing("list nodes", HOST):
            raise error
    return caught.value


def test_the_request_timeout_has_one_default_written_once():
    assert api.request_timeout(None) == api.request_timeout({}) == api.DEFAULT_REQUEST_TIMEOUT == 10
    assert api.request_timeout({"kubernetes_request_timeout": "2.5"}) == 2.5
    # the lock shortens it for short leases only, from the same default
    assert lease.request_timeout({}, 3600) == api.DEFAULT_REQUEST_TIMEOUT
    assert lease.request_timeout({}, 6) == 2.0
    written = [
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if re.search(r"""["']kubernetes_request_timeout["']""", path.read_text())
    ]
    assert written == ["cluster/api.py"], "only the API layer reads kubernetes_request_timeout"


@pytest.mark.parametrize("value", [0, -1, "nan", float("inf"), True, "ten", [10]])
def test_a_request_timeout_that_is_no_timeout_is_refused_before_any_client(value):
    configuration = {"kubernetes_request_timeout": value, "kubeconfig_path": "/nonexistent/kubeconfig"}
    with pytest.raises(InvalidArgument, match=r"^configuration kubernetes_request_timeout \(seconds\) .* must be a number"):
        api.connect(configuration)  # refused for the timeout, not for the missing kubeconfig


def test_every_request_of_a_connection_gets_its_timeout():
    cluster = api.Connection(api.client.ApiClient(), 4.5)
    seen = {}

    def request(name: str, **params: object) -> str:
        seen.update(params, name=name)
        return "answer"

    assert cluster.call("read it", request, "n", label_selector="a=b") == "answer"
    assert seen == {"name": "n", "label_selector": "a=b", "_request_timeout": 4.5}
    cluster.close()


@pytest.mark.parametrize("error, words", [
    (refused(401, "Unauthorized"), "unauthorized (401): Unauthorized; the API refused the kubeconfig's credentials: "
                                   "renew its token or client certificate"),
    (refused(403, 'nodes is forbidden: User "bob" cannot list resource "nodes"'),
     'forbidden (403): nodes is forbidden: User "bob" cannot list resource "nodes"; that user lacks the RBAC '
     "permission: grant it, or use a kubeconfig that has it"),
    (refused(404, body=False), "not found (404): Reason; the API server serves no such resource (was its CRD removed?)"),
    (refused(409, "Apply failed with 1 conflict"), "conflict (409): Apply failed with 1 conflict; another field "
                                                   "manager owns these fields: apply with force to take them over"),
    (refused(422, "Deployment is invalid", [{"field": "spec.replicas", "message": "must be >= 0"}]),
     "invalid (422): Deployment is invalid; spec.replicas: must be >= 0"),
    (refused(418, "teapot"), "HTTP error (418): teapot"),
])
def test_a_refusal_reads_the_same_everywhere(error, words):
    found = failure(error)
    assert str(found) == f"cannot list nodes: {words}"
    assert (found.status, found.reason) == (error.status, words)


def test_an_api_that_does_not_answer_is_named_with_the_cause():
    refusal = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: refused")
    refusal.__cause__ = ConnectionRefusedError(111, "Connection refused")
    found = failure(urllib3.exceptions.MaxRetryError(None, "/api/v1/nodes", refusal))
    assert str(found) == f"cannot list nodes: the Kubernetes API at {HOST} did not answer (connection refused)"
    assert found.status is None
    timeout = failure(urllib3.exceptions.ReadTimeoutError(None, "/api/v1/nodes", "Read timed out. (read timeout=1)"))
    assert f"the Kubernetes API at {HOST} did not answer (" in str(timeout) and "timed out" in str(timeout)


def test_tls_failures_say_what_to_check():
    found = failure(urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.SSLError("certificate verify failed")))
    assert f"TLS with the Kubernetes API at {HOST} failed (certificate verify failed)" in str(found)
    assert "certificate-authority" in str(found) and "kubernetes_verify_tls" in str(found)


def test_the_host_probes_are_discovered_with_their_docs():
    probes = {probe["name"]: probe for probe in discover_probes("chaosali.cluster.probes")}
    masters, hosts = probes["master_hosts"], probes["hosts_of"]
    assert masters["arguments"][0] == {"name": "components", "default": None, "type": "list"}
    assert hosts["arguments"][0] == {"name": "query", "type": "mapping"}
    assert (masters["return_type"], hosts["return_type"]) == ("list", "mapping")
    assert "kubeconfig" in masters["doc"] and "node_ssh_addresses" in masters["doc"]
    assert '{"nodes": "label selector"}' in hosts["doc"] and "empty list" in hosts["doc"]


def test_a_kubeconfig_is_read_once_and_its_yaml_errors_show_no_text(tmp_path, monkeypatch):
    token = "chaosali-secret-token-0123456789"
    broken = tmp_path / "broken.kubeconfig"
    broken.write_text(f"users:\n- name: u\n  user: {{token: {token}\n")
    reads = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: reads.append(str(path)) or real_open(path, *a, **k))
    with pytest.raises(InvalidArgument, match=r"is not valid YAML at line \d+, column \d+$") as invalid:
        api.new_api_client({"kubeconfig_path": str(broken)})
    assert token not in str(invalid.value)

    good = tmp_path / "good.kubeconfig"
    server = "kube.example"
    good.write_text(json.dumps({
        "clusters": [{"name": "c", "cluster": {"server": f"https://{server}:6443"}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }))
    reads.clear()
    with api.new_api_client({"kubeconfig_path": str(good)}) as client:
        assert client.configuration.host == f"https://{server}:6443"
    assert reads.count(str(good)) == 1, reads


def test_a_manifest_yaml_error_names_the_position_not_the_line():
    with pytest.raises(InvalidArgument, match=r"^manifest.yaml is neither JSON nor YAML at line 2, column 11$") as invalid:
        resources.parse("kind: Secret\ntoken: abc: chaosali-secret-0123\n", "manifest.yaml")
    assert "chaosali-secret-0123" not in str(invalid.value)
