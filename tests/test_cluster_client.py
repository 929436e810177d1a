"""The Kubernetes client: which kubeconfig and context, TLS, clear errors, and no global state."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed
from kubernetes import client as k8s

from chaosali.cluster import actions, probes
from chaosali.cluster.api import new_api_client
from chaosali.core.errors import InvalidArgument

ELSEWHERE = "https://elsewhere.invalid:6443"


def current_parts(kubeconfig: Path) -> tuple[dict, dict]:
    """The cluster and user of a kubeconfig's current context, file references made absolute."""
    data = yaml.safe_load(kubeconfig.read_text())
    context = next(c["context"] for c in data["contexts"] if c["name"] == data["current-context"])
    cluster = dict(next(c["cluster"] for c in data["clusters"] if c["name"] == context["cluster"]))
    user = dict(next(u["user"] for u in data["users"] if u["name"] == context["user"]))
    files = {"certificate-authority": cluster, "client-certificate": user, "client-key": user, "tokenFile": user}
    for field, entry in files.items():
        if entry.get(field):
            entry[field] = str(kubeconfig.parent / entry[field])  # unchanged when already absolute
    return cluster, user


def write_kubeconfig(path: Path, contexts: dict[str, tuple[dict, dict]], current: str | None) -> Path:
    """A kubeconfig with one cluster and one user per context, all named after the context."""
    data = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, (c, _) in contexts.items()],
        "users": [{"name": n, "user": u} for n, (_, u) in contexts.items()],
        "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in contexts],
    }
    if current:
        data["current-context"] = current
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def two_contexts(kube, tmp_path: Path) -> Path:
    """Context "main" (current): the test cluster; context "elsewhere": an address nobody serves."""
    cluster, user = current_parts(kube.admin_kubeconfig)
    return write_kubeconfig(
        tmp_path / "two.kubeconfig",
        {"main": (cluster, user), "elsewhere": ({**cluster, "server": ELSEWHERE}, user)},
        "main",
    )


@pytest.fixture
def no_kube_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KUBECONFIG", "KUBERNETES_CONTEXT", "CHAOSTOOLKIT_IN_POD", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)


def host_of(configuration: dict | None = None, secrets: dict | None = None) -> str:
    with new_api_client(configuration, secrets) as api:
        return api.configuration.host


def test_context_comes_from_configuration_then_secrets_then_env(two_contexts, kube, no_kube_env, monkeypatch):
    main = current_parts(kube.admin_kubeconfig)[0]["server"]
    path = {"kubeconfig_path": str(two_contexts)}
    assert host_of(path) == main
    assert host_of({**path, "kubernetes_context": "elsewhere"}) == ELSEWHERE
    assert host_of(path, {"KUBERNETES_CONTEXT": "elsewhere"}) == ELSEWHERE
    assert host_of({**path, "kubernetes_context": "main"}, {"KUBERNETES_CONTEXT": "elsewhere"}) == main
    monkeypatch.setenv("KUBERNETES_CONTEXT", "elsewhere")
    assert host_of(path) == ELSEWHERE
    assert host_of(path, {"KUBERNETES_CONTEXT": "main"}) == main


def test_kubeconfig_comes_from_configuration_then_env_then_home(kube, no_kube_env, monkeypatch, tmp_path):
    cluster, user = current_parts(kube.admin_kubeconfig)
    elsewhere = write_kubeconfig(tmp_path / "e.kubeconfig", {"e": ({**cluster, "server": ELSEWHERE}, user)}, "e")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path}/missing:{elsewhere}")  # a list, as kubectl reads it
    assert host_of() == ELSEWHERE
    assert host_of(kube.admin) == cluster["server"]
    monkeypatch.delenv("KUBECONFIG")
    (tmp_path / "home" / ".kube").mkdir(parents=True)
    (tmp_path / "home" / ".kube" / "config").write_text(elsewhere.read_text())
    assert host_of() == ELSEWHERE


def test_missing_kubeconfig_names_the_paths_tried_and_the_fix(no_kube_env, monkeypatch, tmp_path):
    missing = tmp_path / "nowhere.kubeconfig"
    tried = rf"no kubeconfig found: tried {missing} \(configuration kubeconfig_path\)"
    with pytest.raises(InvalidArgument, match=tried):
        probes.get("Pod", configuration={"kubeconfig_path": str(missing)})
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(InvalidArgument) as error:
        probes.api_ready()
    assert f"tried {tmp_path}/.kube/config" in str(error.value)
    assert "set configuration kubeconfig_path" in str(error.value)


def test_unknown_context_lists_the_known_ones(two_contexts, no_kube_env):
    unknown = r"context 'nope' is not in kubeconfig .*; its contexts: main, elsewhere"
    with pytest.raises(InvalidArgument, match=unknown):
        actions.apply(
            manifest={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "never"}},
            configuration={"kubeconfig_path": str(two_contexts), "kubernetes_context": "nope"},
        )
    data = json.loads(two_contexts.read_text())
    del data["current-context"]
    two_contexts.write_text(json.dumps(data))
    with pytest.raises(InvalidArgument, match="has no current-context: set configuration kubernetes_context"):
        host_of({"kubeconfig_path": str(two_contexts)})


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_verification_is_off_only_when_asked(kube, tmp_path, caplog):
    path = kube.admin
    with caplog.at_level(logging.WARNING, logger="chaostoolkit"):
        with new_api_client(path) as api:
            assert api.configuration.verify_ssl is True
        assert "TLS verification" not in caplog.text
        for off in (False, "false"):
            with new_api_client({**path, "kubernetes_verify_tls": off}) as api:
                assert api.configuration.verify_ssl is False
        assert "TLS verification of the Kubernetes API at" in caplog.text
    assert probes.api_ready(configuration={**path, "kubernetes_verify_tls": False})

    cluster, user = current_parts(kube.admin_kubeconfig)
    insecure = write_kubeconfig(
        tmp_path / "insecure.kubeconfig", {"k": ({**cluster, "insecure-skip-tls-verify": True}, user)}, "k"
    )
    with new_api_client({"kubeconfig_path": str(insecure)}) as api:
        assert api.configuration.verify_ssl is False  # the kubeconfig's own choice...
    with new_api_client({"kubeconfig_path": str(insecure), "kubernetes_verify_tls": True}) as api:
        assert api.configuration.verify_ssl is True  # ...unless the experiment insists
    with pytest.raises(InvalidArgument, match="kubernetes_verify_tls must be true or false"):
        new_api_client({**path, "kubernetes_verify_tls": "maybe"})


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_the_global_default_configuration_is_untouched(kube, tmp_path):
    before = k8s.Configuration._default
    class_verify = k8s.Configuration.__dict__.get("verify_ssl")
    configuration = {"kubeconfig_path": str(kube.admin_kubeconfig), "kubernetes_verify_tls": False}
    first = new_api_client(configuration)
    second = new_api_client(configuration)
    assert first.configuration is not second.configuration  # a new client per call
    first.close(), second.close()
    assert probes.api_ready(configuration=configuration)
    assert probes.get("Namespace", "default", configuration=configuration)["metadata"]["name"] == "default"
    assert k8s.Configuration._default is before
    assert k8s.Configuration.__dict__.get("verify_ssl") == class_verify
    assert k8s.Configuration().verify_ssl is True


def test_no_token_or_kubeconfig_body_reaches_the_log(kube, tmp_path, caplog):
    cluster, _ = current_parts(kube.admin_kubeconfig)
    token = "chaosali-secret-token-0123456789"
    bogus = write_kubeconfig(tmp_path / "bogus.kubeconfig", {"b": (cluster, {"token": token})}, "b")
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(ActivityFailed) as error:
            probes.get("ConfigMap", configuration={"kubeconfig_path": str(bogus)})
    assert "unauthorized (401)" in str(error.value)
    assert "renew its token or client certificate" in str(error.value)
    broken = tmp_path / "broken.kubeconfig"
    broken.write_text(f"users:\n- name: u\n  user: {{token: {token}\n")
    with pytest.raises(InvalidArgument, match=r"is not valid YAML at line \d+") as invalid:
        host_of({"kubeconfig_path": str(broken)})
    assert token not in caplog.text + str(error.value) + str(invalid.value)


def test_in_cluster_is_used_when_asked(kube, no_kube_env, monkeypatch):
    asked = "in-cluster Kubernetes access was asked .*set configuration kubeconfig_path"
    with pytest.raises(InvalidArgument, match=asked):
        host_of({"kubernetes_in_cluster": True, "kubeconfig_path": str(kube.admin_kubeconfig)})
    monkeypatch.setenv("CHAOSTOOLKIT_IN_POD", "true")
    with pytest.raises(InvalidArgument, match="in-cluster Kubernetes access was asked"):
        host_of()
    assert host_of(kube.admin)  # an explicit kubeconfig wins over the env
    with pytest.raises(InvalidArgument, match="no kubeconfig found"):
        host_of({"kubernetes_in_cluster": "false"})


def _silent_server() -> tuple[socket.socket, int]:
    """A TCP port that accepts connections and never says a word: a hung or cut-off API."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    return server, server.getsockname()[1]


def _at(kube, tmp_path: Path, server: str) -> dict:
    cluster, user = current_parts(kube.admin_kubeconfig)
    path = write_kubeconfig(tmp_path / "at.kubeconfig", {"x": ({**cluster, "server": server}, user)}, "x")
    return {"kubeconfig_path": str(path)}


def test_api_ready_is_false_not_an_error_when_the_api_does_not_answer(kube, tmp_path, caplog):
    assert probes.api_ready(configuration=kube.admin) is True
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with caplog.at_level(logging.WARNING, logger="chaostoolkit"):
        assert probes.api_ready(configuration=_at(kube, tmp_path, f"https://127.0.0.1:{port}")) is False
    assert f"Kubernetes API at https://127.0.0.1:{port} is not ready" in caplog.text
    assert "refused" in caplog.text

    server, port = _silent_server()
    with server:
        started = time.monotonic()
        assert probes.api_ready(timeout=1, configuration=_at(kube, tmp_path, f"https://127.0.0.1:{port}")) is False
        assert time.monotonic() - started < 2.5  # one attempt, not urllib3's four


def test_a_hung_api_fails_the_activity_after_the_request_timeout(kube, tmp_path):
    server, port = _silent_server()
    configuration = {**_at(kube, tmp_path, f"https://127.0.0.1:{port}"), "kubernetes_request_timeout": 0.3}
    outcome: list[BaseException] = []
    with server:
        thread = threading.Thread(target=_capture, args=(outcome, configuration), daemon=True)
        thread.start()
        thread.join(20)
    assert not thread.is_alive(), "the probe hung"
    assert isinstance(outcome[0], ActivityFailed)
    assert f"the Kubernetes API at https://127.0.0.1:{port} did not answer" in str(outcome[0])


def _capture(outcome: list, configuration: dict) -> None:
    try:
        probes.get("Pod", configuration=configuration)
    except BaseException as error:  # noqa: BLE001 (handed to the test thread)
        outcome.append(error)
