"""kube-monkey activities: the TOML writer and argument checks alone, then against the lab's real
kube-apiserver (kwok nodes: pods become Running without containers).

The lab tests check what kube-monkey reads (its config.toml parsed back, its RBAC asked of the API
server as its service account, one pass of its kill loop replayed with that account's token), and,
when the lab has the real binary (built from CHAOSALI_KUBE_MONKEY_SRC; the lab's pod runner then
runs it for kube-monkey's pod on that pod's node), what the real kube-monkey does.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import subprocess
import time
import tomllib
import uuid
from pathlib import Path

import pytest
import yaml
from chaoslib.discovery.discover import discover_actions, discover_probes
from chaoslib.exceptions import ActivityFailed
from kubernetes import client as k8s

from chaosali.cluster.api import new_api_client
from chaosali.core.errors import InvalidArgument
from chaosali.host.ssh import Host, run_script
from chaosali.kubemonkey import actions, manifests, probes
from chaosali.lab import k8sbuild, podrunner
from chaosali.lab.cluster import Cluster
from helpers import REPO, KubeAccess, kubelet_process, runs_real_kube_monkey, settings, wait_until, workload_container

KM_LABELS = ("kube-monkey/enabled", "kube-monkey/identifier", "kube-monkey/mtbf", "kube-monkey/kill-mode",
             "kube-monkey/kill-value")
CONFIG_KEYS = {
    "kubemonkey": {"dry_run", "run_hour", "start_hour", "end_hour", "blacklisted_namespaces",
                   "whitelisted_namespaces", "time_zone", "graceperiod_sec"},
    "debug": {"enabled", "schedule_delay", "force_should_kill", "schedule_immediate_kill"},
}
# every kind an instance of kube-monkey may leave behind, its pods and ReplicaSets included
TRACE_LISTS = [
    "list_namespace", "list_cluster_role", "list_cluster_role_binding", "list_config_map_for_all_namespaces",
    "list_service_account_for_all_namespaces", "list_deployment_for_all_namespaces",
    "list_replica_set_for_all_namespaces", "list_pod_for_all_namespaces",
]
NOWHERE = {"kubeconfig_path": "/nonexistent/kubeconfig"}


# -- without a cluster -------------------------------------------------------------------------


def test_config_holds_kube_monkeys_keys_with_its_spelling_of_all_and_none():
    settings = manifests.Settings.checked(
        dry_run=False, run_hour="7", start_hour=8, end_hour=23, time_zone="Europe/Paris",
        blacklisted_namespaces=[], whitelisted_namespaces="demo", graceperiod_sec=0, debug="true",
        schedule_delay=5, force_should_kill=True, schedule_immediate_kill=False,
    )
    config = tomllib.loads(manifests.config_toml(settings))
    assert {table: set(keys) for table, keys in config.items()} == CONFIG_KEYS
    assert config["kubemonkey"]["run_hour"] == 7 and config["debug"]["enabled"] is True
    assert config["kubemonkey"]["blacklisted_namespaces"] == [""]  # none
    assert config["kubemonkey"]["whitelisted_namespaces"] == ["demo"]
    assert settings.covers("demo") and not settings.covers("other")


@pytest.mark.parametrize("arguments, message", [
    ({"run_hour": 10, "start_hour": 10}, "run_hour < start_hour < end_hour"),
    ({"start_hour": 17, "end_hour": 16}, "run_hour < start_hour < end_hour"),
    ({"end_hour": 24}, "end_hour 24 must be a whole number from 0 to 23"),
    ({"run_hour": -1}, "run_hour -1 must be a whole number from 0 to 23"),
    ({"run_hour": 1.5}, "run_hour 1.5 must be a whole number"),
    ({"time_zone": "Europe/Pariss"}, "did you mean Europe/Paris"),
    ({"time_zone": ""}, "time_zone must be an IANA time zone"),
    ({"namespace": "Kube_Monkey"}, "namespace 'Kube_Monkey' is not a Kubernetes name"),
    ({"whitelisted_namespaces": ["demo", "bad name"]}, "each of whitelisted_namespaces"),
    ({"blacklisted_namespaces": 3}, "blacklisted_namespaces must be a list"),
    ({"graceperiod_sec": -1}, "graceperiod_sec -1 must be a whole number of 0 or more"),
    ({"schedule_delay": 0}, "schedule_delay 0 must be a whole number of 1 or more"),
    ({"dry_run": "maybe"}, "dry_run must be true or false"),
    ({"image": "kube monkey"}, "image must be a container image reference"),
])
def test_deploy_refuses_bad_arguments_before_reaching_any_cluster(arguments, message):
    # the kubeconfig does not exist: reaching for the cluster would fail with another message
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace("?", r"\?")):
        actions.deploy_kube_monkey(**arguments, configuration=NOWHERE)


@pytest.mark.parametrize("arguments, message", [
    ({"kill_mode": "kill-some"}, "kill_mode must be one of fixed, kill-all, random-max-percent, fixed-percent"),
    ({"kill_mode": "fixed", "kill_value": 0}, "a number of pods, for fixed"),
    ({"kill_mode": "fixed-percent", "kill_value": 101}, r"for fixed-percent\) 101 must be a whole number from 1 to 100"),
    ({"kill_mode": "random-max-percent", "kill_value": 0}, "from 1 to 100"),
    ({"kill_mode": "fixed", "kill_value": None}, "kill_mode fixed needs a kill_value"),
    ({"mtbf": 0}, "mtbf"),
    ({"mtbf": "two"}, "mtbf"),
    ({"identifier": "-web"}, "identifier must be a label value"),
    ({"kind": "ReplicaSet"}, "kind must be Deployment, StatefulSet or DaemonSet"),
    ({"name": None}, "give either name or label_selector"),
    ({"label_selector": "app=web"}, "give either name or label_selector"),
    ({"namespace": "demo!"}, "namespace 'demo!' is not a Kubernetes name"),
])
def test_mark_refuses_bad_arguments_before_reaching_any_cluster(arguments, message):
    with pytest.raises(InvalidArgument, match=message):
        actions.mark_victims(**{"namespace": "demo", "name": "web", **arguments}, configuration=NOWHERE)


def test_kill_all_needs_no_value_and_drops_an_old_one():
    assert manifests.enrolment(1, "kill-all", None)["kube-monkey/kill-value"] is None
    assert manifests.enrolment("3", "fixed-percent", "50") == {
        "kube-monkey/enabled": "enabled", "kube-monkey/mtbf": "3", "kube-monkey/kill-mode": "fixed-percent",
        "kube-monkey/kill-value": "50",
    }


def test_the_lab_builds_kube_monkey_only_from_a_source_it_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAOSALI_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(k8sbuild.KUBE_MONKEY_SRC_ENV, raising=False)
    assert k8sbuild.kube_monkey() is None  # no source, nothing built: the lab runs without it

    monkeypatch.setenv(k8sbuild.KUBE_MONKEY_SRC_ENV, str(tmp_path / "missing.tar.gz"))
    with pytest.raises(RuntimeError, match="no such file or directory; point it at kube-monkey's source"):
        k8sbuild.kube_monkey()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "README").write_text("not kube-monkey")
    monkeypatch.setenv(k8sbuild.KUBE_MONKEY_SRC_ENV, str(tmp_path / "other"))
    with pytest.raises(RuntimeError, match="holds no kube-monkey source"):
        k8sbuild.kube_monkey()

    # built once per source: a cached binary is reused, with the variable or without
    built = tmp_path / "cache" / f"kube-monkey-{k8sbuild._source_digest(tmp_path / 'other')}" / "kube-monkey"
    built.write_text("#!/bin/sh\n")
    built.chmod(0o755)
    assert k8sbuild.kube_monkey() == built
    monkeypatch.delenv(k8sbuild.KUBE_MONKEY_SRC_ENV)
    assert k8sbuild.kube_monkey() == built


def test_kwok_leaves_deleting_the_pods_the_runner_runs_to_it():
    delete = {"spec": {"selector": {"matchExpressions": [{"key": ".metadata.deletionTimestamp",
                                                          "operator": "Exists"}]},
                       "next": {"finalizers": {"empty": True}, "delete": True}}}
    ready = {"spec": {"selector": {}, "next": {"statusTemplate": "..."}}}
    changed_delete, same_ready = podrunner.kwok_stages([delete, ready], ["kube-monkey", "coredns"])
    assert same_ready == ready
    assert changed_delete["spec"]["selector"]["matchExpressions"][0] == \
        delete["spec"]["selector"]["matchExpressions"][0]
    [ours] = changed_delete["spec"]["selector"]["matchExpressions"][1:]
    assert ours["operator"] == "NotIn" and ours["values"] == ["true"]
    assert ours["key"] == ('(.metadata.labels["app.kubernetes.io/name"] == "kube-monkey" and '
                           '.metadata.labels["app.kubernetes.io/managed-by"] == "chaosali") or '
                           '(.metadata.labels["k8s-app"] == "kube-dns")')
    [only_dns] = podrunner.kwok_stages([delete], ["coredns"])[0]["spec"]["selector"]["matchExpressions"][1:]
    assert only_dns["key"] == '(.metadata.labels["k8s-app"] == "kube-dns")'


def test_discovery_shows_every_activity_with_docs_and_types():
    activities = discover_actions("chaosali.kubemonkey.actions") + discover_probes("chaosali.kubemonkey.probes")
    found = {a["name"]: a for a in activities}
    assert set(found) == {"deploy_kube_monkey", "remove_kube_monkey", "mark_victims", "unmark_victims",
                          "kube_monkey_running", "marked_victims", "victim_pods_deleted"}
    deploy = {a["name"]: a for a in found["deploy_kube_monkey"]["arguments"]}
    assert deploy["dry_run"]["default"] is False and deploy["dry_run"]["type"] == "boolean"
    assert deploy["run_hour"]["type"] == "integer" and deploy["image"]["default"] == manifests.DEFAULT_IMAGE
    assert "blast radius" in found["deploy_kube_monkey"]["doc"]
    assert found["victim_pods_deleted"]["type"] == "probe" and "replacements" in found["victim_pods_deleted"]["doc"]


# -- against the lab's API server --------------------------------------------------------------


@pytest.fixture
def api(kube_admin):
    with new_api_client(kube_admin) as api_client:
        yield api_client


def _new_namespace(api) -> str:
    name = f"km-test-{uuid.uuid4().hex[:8]}"
    k8s.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture
def ns(api, kube_admin) -> str:
    """A namespace for victims, withdrawn from kube-monkey after the test as a drill's rollback does
    (a namespace is deleted in the background: its workloads would still carry the labels)."""
    name = _new_namespace(api)
    yield name
    actions.unmark_victims(namespace=name, label_selector="kube-monkey/enabled", wait=False, configuration=kube_admin)
    k8s.CoreV1Api(api).delete_namespace(name)


@pytest.fixture
def km_ns(kube_admin, api) -> str:
    """A name for kube-monkey's namespace (not created); whatever kube-monkey left is removed after."""
    name = f"km-{uuid.uuid4().hex[:8]}"
    yield name
    actions.remove_kube_monkey(namespace=name, configuration=kube_admin)
    assert traces(api, name) == []


def traces(api, instance: str | None = None) -> list[str]:
    """Every object, in any namespace, labelled as an instance of kube-monkey that chaosali deployed."""
    selector = "app.kubernetes.io/managed-by=chaosali,app.kubernetes.io/name=kube-monkey"
    if instance:
        selector += f",app.kubernetes.io/instance={instance}"
    core, apps, rbac = k8s.CoreV1Api(api), k8s.AppsV1Api(api), k8s.RbacAuthorizationV1Api(api)
    found = []
    for method in TRACE_LISTS:
        owner = next(o for o in (core, apps, rbac) if hasattr(o, method))
        for item in getattr(owner, method)(label_selector=selector).items:
            found.append(f"{item.kind or method} {item.metadata.namespace or ''}/{item.metadata.name}")
    return found


def deployment(api, namespace: str, name: str, replicas: int = 2, template_labels: dict | None = None) -> None:
    labels = {"app": name}
    k8s.AppsV1Api(api).create_namespaced_deployment(namespace, {
        "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": {**labels, **(template_labels or {})}},
            "spec": {"containers": [workload_container(api, name)]}}},
    })
    assert wait_until(lambda: available(api, namespace, name) >= replicas, 60) is not None, f"{name} never available"


def available(api, namespace: str, name: str) -> int:
    return k8s.AppsV1Api(api).read_namespaced_deployment(name, namespace).status.available_replicas or 0


def pods(api, namespace: str, selector: str) -> list:
    return [p for p in k8s.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items
            if p.metadata.deletion_timestamp is None]


def kube_monkey_labels(labels: dict | None) -> dict:
    return {key: value for key, value in (labels or {}).items() if key.startswith("kube-monkey/")}


def service_account_kubeconfig(api, kube, path: Path, namespace: str, name: str) -> dict:
    """A kubeconfig with a token of the service account: what kube-monkey's pod would have."""
    token = k8s.CoreV1Api(api).create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    config = yaml.safe_load(Path(kube.admin_kubeconfig).read_text())
    config["users"] = [{"name": name, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = name
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return {"kubeconfig_path": str(path)}


def kube_monkey_pass(as_kube_monkey: dict, config: dict) -> list[str]:
    """One pass of kube-monkey's kill loop (fixed kill mode) with its own credentials: list the
    enrolled Deployments of each whitelisted namespace, read their labels, list their pods by
    identifier and delete as many running pods as the kill-value says. Returns the deleted pods."""
    settings = config["kubemonkey"]
    killed = []
    with new_api_client(as_kube_monkey) as monkey:
        core, apps = k8s.CoreV1Api(monkey), k8s.AppsV1Api(monkey)
        assert k8s.VersionApi(monkey).get_code().git_version  # how kube-monkey checks its client
        for namespace in settings["whitelisted_namespaces"]:
            enrolled = apps.list_namespaced_deployment(namespace, label_selector="kube-monkey/enabled=enabled")
            for victim in enrolled.items:
                if namespace in settings["blacklisted_namespaces"]:
                    continue
                labels = apps.read_namespaced_deployment(victim.metadata.name, namespace).metadata.labels
                assert labels["kube-monkey/kill-mode"] == "fixed" and int(labels["kube-monkey/mtbf"]) > 0
                running = [p for p in core.list_namespaced_pod(
                    namespace, label_selector=f"kube-monkey/identifier={labels['kube-monkey/identifier']}").items
                    if p.status.phase == "Running"]
                for pod in running[: int(labels["kube-monkey/kill-value"])]:
                    core.delete_namespaced_pod(pod.metadata.name, namespace,
                                               grace_period_seconds=settings["graceperiod_sec"])
                    killed.append(pod.metadata.name)
    return killed


def can(api, user_namespace: str, verb: str, resource: str, group: str = "", namespace: str | None = None) -> bool:
    """Whether kube-monkey's service account may do it, as the API server's authorizer answers."""
    review = k8s.AuthorizationV1Api(api).create_subject_access_review({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{user_namespace}:kube-monkey",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{user_namespace}", "system:authenticated"],
            "resourceAttributes": {"verb": verb, "resource": resource, "group": group,
                                   **({"namespace": namespace} if namespace else {})},
        },
    })
    return review.status.allowed


def test_deploy_then_remove_leaves_no_trace(kube_admin, api, km_ns, ns):
    output = actions.deploy_kube_monkey(namespace=km_ns, whitelisted_namespaces=[ns], schedule_delay=5,
                                        time_zone="Asia/Shanghai", configuration=kube_admin)

    assert output["namespace_created"] is True
    assert [(o["kind"], o["namespace"], o["name"]) for o in output["objects"]] == [
        ("ConfigMap", km_ns, "kube-monkey"), ("ServiceAccount", km_ns, "kube-monkey"),
        ("ClusterRole", None, f"chaosali-kube-monkey-{km_ns}"),
        ("ClusterRoleBinding", None, f"chaosali-kube-monkey-{km_ns}"),
        ("Deployment", km_ns, "kube-monkey"),
    ]
    assert all(o["resourceVersion"] for o in output["objects"]), "an object was not accepted"

    # the configuration, as kube-monkey reads it
    config_map = k8s.CoreV1Api(api).read_namespaced_config_map("kube-monkey", km_ns)
    config = tomllib.loads(config_map.data["config.toml"])
    assert {table: set(keys) for table, keys in config.items()} == CONFIG_KEYS
    assert config == output["config"]
    assert config["kubemonkey"] | {"whitelisted_namespaces": None} == {
        "dry_run": False, "run_hour": 8, "start_hour": 10, "end_hour": 16, "time_zone": "Asia/Shanghai",
        "graceperiod_sec": 5, "blacklisted_namespaces": ["kube-system"], "whitelisted_namespaces": None,
    }
    assert config["kubemonkey"]["whitelisted_namespaces"] == [ns]
    assert config["debug"] == {"enabled": True, "schedule_delay": 5, "force_should_kill": True,
                               "schedule_immediate_kill": True}

    # its Deployment mounts the configuration where kube-monkey looks, and runs as its account
    pod_spec = k8s.AppsV1Api(api).read_namespaced_deployment("kube-monkey", km_ns).spec.template.spec
    volumes = {v.name: v for v in pod_spec.volumes}
    mounts = {m.mount_path: m for m in pod_spec.containers[0].volume_mounts}
    assert volumes[mounts["/etc/kube-monkey"].name].config_map.name == "kube-monkey"
    assert pod_spec.service_account_name == "kube-monkey"
    assert pod_spec.containers[0].image == manifests.DEFAULT_IMAGE

    # its rights, as the API server's authorizer answers for its service account
    for resource, group in (("namespaces", ""), ("deployments", "apps"), ("statefulsets", "apps"),
                            ("daemonsets", "apps"), ("pods", "")):
        for verb in ("get", "list", "watch"):
            assert can(api, km_ns, verb, resource, group), f"kube-monkey may not {verb} {resource}"
    assert can(api, km_ns, "delete", "pods", namespace=ns)
    assert not can(api, km_ns, "delete", "deployments", "apps", namespace=ns)
    assert not can(api, km_ns, "create", "pods", namespace=ns)
    assert not can(api, km_ns, "get", "secrets", namespace=ns)

    # kwok runs its pod (no container really starts: that proves the objects, not kube-monkey)
    assert probes.kube_monkey_running(namespace=km_ns, timeout=60, configuration=kube_admin) is True

    # deploying again changes what changed: the new configuration restarts the pod (new digest)
    def digest() -> dict:
        return k8s.AppsV1Api(api).read_namespaced_deployment("kube-monkey", km_ns).spec.template.metadata.annotations

    before = digest()
    again = actions.deploy_kube_monkey(namespace=km_ns, whitelisted_namespaces=[ns], dry_run=True, configuration=kube_admin)
    assert again["namespace_created"] is False and again["config"]["kubemonkey"]["dry_run"] is True
    assert digest() != before

    removed = actions.remove_kube_monkey(namespace=km_ns, configuration=kube_admin)
    assert removed["namespace_deleted"] is True
    assert {d["kind"] for d in removed["deleted"]} == {"Deployment", "ConfigMap", "ServiceAccount",
                                                       "ClusterRoleBinding", "ClusterRole", "Namespace"}
    assert traces(api, km_ns) == []
    assert km_ns not in [n.metadata.name for n in k8s.CoreV1Api(api).list_namespace().items]
    assert probes.kube_monkey_running(namespace=km_ns, configuration=kube_admin) is False
    assert actions.remove_kube_monkey(namespace=km_ns, configuration=kube_admin)["deleted"] == []  # quietly


def test_an_existing_namespace_is_kept_and_a_foreign_kube_monkey_is_not_taken_over(kube_admin, api, ns):
    output = actions.deploy_kube_monkey(namespace=ns, configuration=kube_admin)
    assert output["namespace_created"] is False
    removed = actions.remove_kube_monkey(namespace=ns, configuration=kube_admin)
    assert removed["namespace_deleted"] is False and len(removed["deleted"]) == 5
    assert k8s.CoreV1Api(api).read_namespace(ns).status.phase == "Active"
    assert traces(api, ns) == []

    # someone else's kube-monkey (here only its ConfigMap) is neither changed nor adopted
    k8s.CoreV1Api(api).create_namespaced_config_map(ns, {"metadata": {"name": "kube-monkey"}, "data": {"mine": "yes"}})
    with pytest.raises(ActivityFailed, match="not deployed by chaosali"):
        actions.deploy_kube_monkey(namespace=ns, configuration=kube_admin)
    assert traces(api, ns) == []
    assert k8s.CoreV1Api(api).read_namespaced_config_map("kube-monkey", ns).data == {"mine": "yes"}


def test_bad_arguments_apply_nothing(kube_admin, api, km_ns):
    with pytest.raises(InvalidArgument, match="run_hour < start_hour < end_hour"):
        actions.deploy_kube_monkey(namespace=km_ns, run_hour=12, start_hour=10, configuration=kube_admin)
    with pytest.raises(InvalidArgument, match="time_zone"):
        actions.deploy_kube_monkey(namespace=km_ns, time_zone="Mars/Olympus", configuration=kube_admin)
    assert traces(api, km_ns) == []
    assert km_ns not in [n.metadata.name for n in k8s.CoreV1Api(api).list_namespace().items]


def test_mark_kill_and_unmark_a_deployment(kube_admin, api, kube, km_ns, ns, tmp_path):
    deployment(api, ns, "shop")
    deployment(api, ns, "bystander")

    marked = actions.mark_victims(namespace=ns, name="shop", mtbf=2, kill_value=1, configuration=kube_admin)
    assert [(m["kind"], m["name"], m["identifier"], m["rolled_out"]) for m in marked] == [
        ("Deployment", "shop", "shop", True)]
    expected = {"kube-monkey/enabled": "enabled", "kube-monkey/identifier": "shop", "kube-monkey/mtbf": "2",
                "kube-monkey/kill-mode": "fixed", "kube-monkey/kill-value": "1"}
    assert marked[0]["labels"] == expected and marked[0]["previous_labels"] == {}
    shop = k8s.AppsV1Api(api).read_namespaced_deployment("shop", ns)
    assert kube_monkey_labels(shop.metadata.labels) == expected
    assert kube_monkey_labels(shop.spec.template.metadata.labels) == expected
    # after the rollout (waited for by the action) every pod is one kube-monkey can find
    assert [p.metadata.labels["kube-monkey/identifier"] for p in pods(api, ns, "app=shop")] == ["shop", "shop"]
    assert pods(api, ns, "app=bystander") and not any(
        kube_monkey_labels(p.metadata.labels) for p in pods(api, ns, "app=bystander"))

    [victim] = probes.marked_victims(namespace=ns, configuration=kube_admin)
    assert victim | {"marked_at": None} == {
        "kind": "Deployment", "namespace": ns, "name": "shop", "identifier": "shop", "mtbf": "2",
        "kill_mode": "fixed", "kill_value": "1", "template_identifier": "shop", "template_lacks_identifier": False,
        "running_pods": 2, "marked_at": None, "ok": True, "problems": [],
    }
    assert victim["marked_at"] == marked[0]["marked_at"]
    assert probes.victim_pods_deleted(namespace=ns, configuration=kube_admin)["deleted"] == 0

    # kube-monkey's kill, replayed with its own service account's token
    deployed = actions.deploy_kube_monkey(namespace=km_ns, whitelisted_namespaces=[ns], configuration=kube_admin)
    assert [(v["namespace"], v["name"]) for v in deployed["victims_in_scope"]] == [(ns, "shop")]
    as_kube_monkey = service_account_kubeconfig(api, kube, tmp_path / "km.kubeconfig", km_ns, "kube-monkey")
    config = tomllib.loads(k8s.CoreV1Api(api).read_namespaced_config_map("kube-monkey", km_ns).data["config.toml"])
    killed = kube_monkey_pass(as_kube_monkey, config)
    assert len(killed) == 1

    def deleted() -> dict:
        return probes.victim_pods_deleted(namespace=ns, configuration=kube_admin)

    assert wait_until(lambda: deleted()["deleted"] == 1, 30) is not None, (deleted(), marked[0]["marked_at"], [
        (p.metadata.name, p.metadata.creation_timestamp, p.metadata.deletion_timestamp)
        for p in k8s.CoreV1Api(api).list_namespaced_pod(ns, label_selector="app=shop").items])
    [report] = deleted()["victims"]
    assert report["name"] == "shop" and report["since"] == marked[0]["marked_at"]
    assert killed[0] not in report["replacements"]
    assert wait_until(lambda: available(api, ns, "shop") == 2, 30) is not None  # the ReplicaSet replaced it
    an_hour_ago = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat()
    since_before_the_rollout = probes.victim_pods_deleted(since=an_hour_ago, namespace=ns, configuration=kube_admin)
    assert since_before_the_rollout["deleted"] >= 2  # the marking's rollout counts too

    unmarked = actions.unmark_victims(namespace=ns, name="shop", configuration=kube_admin)
    assert unmarked == [{"kind": "Deployment", "namespace": ns, "name": "shop", "removed_labels": expected}]
    shop = k8s.AppsV1Api(api).read_namespaced_deployment("shop", ns)
    assert not kube_monkey_labels(shop.metadata.labels) and not kube_monkey_labels(shop.spec.template.metadata.labels)
    assert manifests.MARKED_AT not in (shop.metadata.annotations or {})
    assert shop.metadata.labels == {"app": "shop"} and shop.spec.template.metadata.labels == {"app": "shop"}
    assert not any(kube_monkey_labels(p.metadata.labels) for p in pods(api, ns, "app=shop"))
    assert probes.marked_victims(namespace=ns, configuration=kube_admin) == []
    assert kube_monkey_pass(as_kube_monkey, config) == []  # withdrawn: nothing left to kill
    assert actions.unmark_victims(namespace=ns, name="shop", configuration=kube_admin)[0]["removed_labels"] == {}
    assert actions.unmark_victims(namespace=ns, name="gone", configuration=kube_admin) == []


def test_cleanup_removes_the_cordon_and_the_victim_labels_chaosali_left_and_nothing_else(kube_admin, api, kube, ns):
    from chaosali.cli import main
    from chaosali.core.markers import CORDONED_BY_ANNOTATION

    deployment(api, ns, "shop", replicas=1)
    deployment(api, ns, "foreign", replicas=1)
    actions.mark_victims(namespace=ns, name="shop", mtbf=2, kill_value=1, wait=False, configuration=kube_admin)
    enrolled = {"kube-monkey/enabled": "enabled", "kube-monkey/identifier": "foreign"}  # by someone else
    k8s.AppsV1Api(api).patch_namespaced_deployment("foreign", ns, {"metadata": {"labels": enrolled}})
    core = k8s.CoreV1Api(api)
    cordon = {"spec": {"unschedulable": True}, "metadata": {"annotations": {CORDONED_BY_ANNOTATION: "chaosali-0123abcd"}}}
    core.patch_node("worker2", cordon)
    try:
        assert main(["cleanup", "--var-file", str(kube.lab.vars_path)]) == 0
        node = core.read_node("worker2")
        assert not node.spec.unschedulable and CORDONED_BY_ANNOTATION not in (node.metadata.annotations or {})
    finally:
        core.patch_node("worker2", {"spec": {"unschedulable": False},
                                    "metadata": {"annotations": {CORDONED_BY_ANNOTATION: None}}})
    shop = k8s.AppsV1Api(api).read_namespaced_deployment("shop", ns)
    assert kube_monkey_labels(shop.metadata.labels) == {} == kube_monkey_labels(shop.spec.template.metadata.labels)
    assert manifests.MARKED_AT not in (shop.metadata.annotations or {})
    foreign = k8s.AppsV1Api(api).read_namespaced_deployment("foreign", ns)
    assert kube_monkey_labels(foreign.metadata.labels) == enrolled


def test_marking_by_selector_modes_and_the_mistakes_it_refuses(kube_admin, api, ns):
    for name in ("cart", "pay"):
        deployment(api, ns, name, replicas=1)
        k8s.AppsV1Api(api).patch_namespaced_deployment(name, ns, {"metadata": {"labels": {"tier": "front"}}})

    with pytest.raises(InvalidArgument, match="identifier 'same' given for 2 workloads"):
        actions.mark_victims(namespace=ns, label_selector="tier=front", identifier="same", configuration=kube_admin)
    with pytest.raises(ActivityFailed, match="no Deployment 'nowhere' in namespace"):
        actions.mark_victims(namespace=ns, name="nowhere", configuration=kube_admin)
    assert probes.marked_victims(namespace=ns, configuration=kube_admin) == []

    marked = actions.mark_victims(namespace=ns, label_selector="tier=front", kill_mode="random-max-percent",
                                  kill_value=50, wait=False, configuration=kube_admin)
    assert sorted((m["name"], m["identifier"], m["rolled_out"]) for m in marked) == [
        ("cart", "cart", None), ("pay", "pay", None)]

    # kill-all needs no kill-value: the old one goes
    [cart] = actions.mark_victims(namespace=ns, name="cart", kill_mode="kill-all", configuration=kube_admin)
    assert cart["previous_labels"]["kube-monkey/kill-mode"] == "random-max-percent"
    labels = k8s.AppsV1Api(api).read_namespaced_deployment("cart", ns).metadata.labels
    assert labels["kube-monkey/kill-mode"] == "kill-all" and "kube-monkey/kill-value" not in labels

    # an identifier already used by another victim would make kube-monkey kill both
    with pytest.raises(InvalidArgument, match="already that of Deployment 'pay'"):
        actions.mark_victims(namespace=ns, name="cart", identifier="pay", configuration=kube_admin)

    # the frequent mistake: labels on the workload only, none on its pod template
    deployment(api, ns, "manual", replicas=1)
    k8s.AppsV1Api(api).patch_namespaced_deployment("manual", ns, {"metadata": {"labels": {
        "kube-monkey/enabled": "enabled", "kube-monkey/identifier": "manual", "kube-monkey/mtbf": "1",
        "kube-monkey/kill-mode": "fixed", "kube-monkey/kill-value": "0"}}})
    found = {v["name"]: v for v in probes.marked_victims(namespace=ns, configuration=kube_admin)}
    assert set(found) == {"cart", "pay", "manual"}
    assert found["manual"]["template_lacks_identifier"] is True and found["manual"]["running_pods"] == 0
    assert found["manual"]["ok"] is False and any("finds no pod" in p for p in found["manual"]["problems"])
    assert any("kill_value" in p for p in found["manual"]["problems"])  # 0: kube-monkey refuses it
    assert found["cart"]["ok"] is True and found["cart"]["template_lacks_identifier"] is False
    with pytest.raises(InvalidArgument, match="was not marked by mark_victims"):
        probes.victim_pods_deleted(namespace=ns, name="manual", configuration=kube_admin)

    unmarked = actions.unmark_victims(namespace=ns, label_selector="tier=front", configuration=kube_admin)
    assert sorted(u["name"] for u in unmarked) == ["cart", "pay"]
    assert [v["name"] for v in probes.marked_victims(namespace=ns, configuration=kube_admin)] == ["manual"]


def test_statefulsets_and_daemonsets_roll_out_their_marks_too(kube_admin, api, ns):
    apps = k8s.AppsV1Api(api)
    template = lambda name: {"metadata": {"labels": {"app": name}},
                             "spec": {"containers": [workload_container(api, name)]}}
    apps.create_namespaced_stateful_set(ns, {"metadata": {"name": "db"}, "spec": {
        "replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": template("db")}})
    apps.create_namespaced_daemon_set(ns, {"metadata": {"name": "agent"}, "spec": {
        "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["agent"]}]},
        "template": template("agent")}})
    apps.create_namespaced_daemon_set(ns, {"metadata": {"name": "manual"}, "spec": {
        "updateStrategy": {"type": "OnDelete"}, "selector": {"matchLabels": {"app": "manual"}},
        "template": template("manual")}})

    def running(selector: str) -> int:
        return sum(p.status.phase == "Running" for p in pods(api, ns, selector))

    assert wait_until(lambda: running("app=db") == 2 and running("app=agent") == 2, 90) is not None

    [db] = actions.mark_victims(namespace=ns, kind="sts", name="db", configuration=kube_admin)
    [agent] = actions.mark_victims(namespace=ns, kind="DaemonSet", name="agent", kill_mode="kill-all",
                                   configuration=kube_admin)
    [manual] = actions.mark_victims(namespace=ns, kind="ds", name="manual", configuration=kube_admin)
    assert (db["kind"], db["rolled_out"]) == ("StatefulSet", True)
    assert (agent["kind"], agent["rolled_out"]) == ("DaemonSet", True)
    assert manual["rolled_out"] is False  # OnDelete: only pods created from now on carry the identifier
    assert [p.metadata.labels.get("kube-monkey/identifier") for p in pods(api, ns, "app=db")] == ["db", "db"]
    assert [p.metadata.labels.get("kube-monkey/identifier") for p in pods(api, ns, "app=agent")] == ["agent", "agent"]
    found = {v["name"]: v for v in probes.marked_victims(namespace=ns, configuration=kube_admin)}
    assert (found["db"]["running_pods"], found["agent"]["running_pods"]) == (2, 2)

    for kind, name in (("StatefulSet", "db"), ("DaemonSet", "agent"), ("DaemonSet", "manual")):
        actions.unmark_victims(namespace=ns, kind=kind, name=name, configuration=kube_admin)
    assert probes.marked_victims(namespace=ns, configuration=kube_admin) == []
    assert not any(kube_monkey_labels(p.metadata.labels) for p in pods(api, ns, "app in (db,agent)"))


def test_experiment_too_short_for_a_kill_deviates_and_leaves_nothing(kube_admin, api, kube, tmp_path):
    experiment = REPO / "experiments" / "kube-monkey.json"
    validated = subprocess.run(["chaos", "validate", str(experiment)], cwd=tmp_path, capture_output=True, text=True)
    assert validated.returncode == 0, validated.stdout + validated.stderr

    var_file = kube.lab.vars_path if kube.lab else tmp_path / "vars.json"
    if not kube.lab:
        var_file.write_text(json.dumps({"configuration": kube_admin}))
    run = subprocess.run(
        ["chaos", "run", "--journal-path", str(tmp_path / "journal.json"), "--var-file", str(var_file),
         "--var", "kill_seconds:int=1", str(experiment)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    journal = json.loads((tmp_path / "journal.json").read_text())
    # a second is too short for any kill (kube-monkey first schedules after schedule_delay, 10 s): the
    # drill deviates, as it must without a kill (the drill that kills: test_drills.py), and leaves nothing
    assert journal["deviated"] is True, run.stdout + run.stderr
    # counted in the method, before the victims are withdrawn; faults_observed fails the drill on none
    counted = next(entry["output"] for entry in journal["run"] if entry["activity"]["name"] == "victim-pods-deleted")
    assert counted["deleted"] == 0 and counted["victims"][0]["name"] == "web"
    after = {probe["activity"]["name"]: probe for probe in journal["steady_states"]["after"]["probes"]}
    assert after["faults-proven"]["tolerance_met"] is False

    activities = {entry["activity"]["name"]: entry for entry in journal["run"]}
    assert all(entry["status"] == "succeeded" for entry in journal["run"]), journal["run"]
    deployed = activities["deploy-kube-monkey"]["output"]
    assert deployed["namespace"] == "kube-monkey" and len(deployed["objects"]) == 5
    assert deployed["config"]["kubemonkey"]["whitelisted_namespaces"] == ["demo"]
    assert activities["kube-monkey-running"]["output"] is True
    [marked] = activities["mark-victims"]["output"]
    assert (marked["namespace"], marked["name"], marked["identifier"]) == ("demo", "web", "web")
    assert marked["rolled_out"] is True
    assert [(r["activity"]["name"], r["status"]) for r in journal["rollbacks"]] == [
        ("unmark-victims", "succeeded"), ("remove-kube-monkey", "succeeded")]
    assert journal["rollbacks"][1]["output"]["namespace_deleted"] is True

    assert traces(api) == []
    web = k8s.AppsV1Api(api).read_namespaced_deployment("web", "demo")
    assert not kube_monkey_labels(web.metadata.labels) and not kube_monkey_labels(web.spec.template.metadata.labels)
    assert not any(kube_monkey_labels(p.metadata.labels) for p in pods(api, "demo", "app=web"))
    assert available(api, "demo", "web") >= 1
    if kube.lab:
        assert monkey_processes(kube) == []


# -- the real kube-monkey, run by the lab as a kubelet would -----------------------------------


@pytest.fixture
def real(kube) -> KubeAccess:
    """The lab cluster, its nodes running kube-monkey's pods with the real binary."""
    if kube.lab is None:
        pytest.skip("the real kube-monkey runs in the lab only: unset CHAOSALI_TEST_KUBECONFIG")
    if not runs_real_kube_monkey(kube.lab):
        pytest.skip("the real kube-monkey is not built: set CHAOSALI_KUBE_MONKEY_SRC to its source tarball or "
                    "directory (scripts/setup uses ../shared/third_party/kube-monkey-7dcb3ca.tar.gz when it "
                    "exists) and run scripts/setup or python -m chaosali.lab.k8sbuild")
    return kube


def monkey_log(kube: KubeAccess, km_ns: str) -> str:
    """What the real kube-monkey of km_ns wrote (-v=5), on whichever node its pods ran."""
    return "".join(log for name, log in Cluster(kube.lab).pod_logs().items() if name.split("/")[1].startswith(f"{km_ns}_"))


def monkey_processes(kube: KubeAccess) -> list[int]:
    """The real kube-monkey processes on the lab's hosts."""
    found = []
    for host in kube.lab.hosts:
        pids = subprocess.run(["ip", "netns", "pids", host.namespace], capture_output=True, text=True).stdout.split()
        # a real worker's containers have network namespaces of their own, under its kubelet's cgroup
        pids += [pid for procs in glob.glob(f"/sys/fs/cgroup/pids/{host.namespace}/**/cgroup.procs", recursive=True)
                 for pid in Path(procs).read_text().split()]
        for pid in set(pids):
            try:
                argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            except OSError:  # gone meanwhile
                continue
            if argv0.endswith(b"/kube-monkey"):
                found.append(int(pid))
    return found


def container_ids(pod) -> set[str]:
    """The IDs of a pod's containers as containerd knows them."""
    return {c.container_id.split("://", 1)[1] for c in pod.status.container_statuses or [] if c.container_id}


def running_containers(kube: KubeAccess) -> set[str]:
    """Every container that the containerd of a real worker runs (its tasks)."""
    return {task.split()[0] for host in kube.lab.hosts if host.role == "worker"
            for task in run_script(Host(host.address), "ctr --namespace k8s.io tasks ls | grep -w RUNNING || true",
                                   settings(kube.lab)).splitlines()}


def executed(log: str, name: str) -> int:
    """How many kills kube-monkey logged as done on Deployment ``name``."""
    return log.count(f"Termination successfully executed for v1.Deployment {name}\n")


def names(found: list) -> set[str]:
    return {p.metadata.name for p in found}


def test_the_real_kube_monkey_kills_exactly_its_victims_pods_and_leaves_nothing(kube_admin, api, real, km_ns, ns):
    for name in ("everything", "one", "bystander"):
        deployment(api, ns, name)
    actions.mark_victims(namespace=ns, name="everything", kill_mode="kill-all", configuration=kube_admin)
    actions.mark_victims(namespace=ns, name="one", kill_mode="fixed", kill_value=1, configuration=kube_admin)
    originals = {name: pods(api, ns, f"app={name}") for name in ("everything", "one", "bystander")}
    before = {name: names(found) for name, found in originals.items()}

    started = time.monotonic()
    actions.deploy_kube_monkey(namespace=km_ns, whitelisted_namespaces=[ns], schedule_delay=5, configuration=kube_admin)
    assert wait_until(lambda: monkey_processes(real), 30) is not None, "the pod runner never started kube-monkey"
    [pid] = monkey_processes(real)
    # what its pod mounts, private to its process: the root namespace sees none of it
    root = Path(f"/proc/{pid}/root")
    config_map = k8s.CoreV1Api(api).read_namespaced_config_map("kube-monkey", km_ns)
    assert (root / "etc/kube-monkey/config.toml").read_text() == config_map.data["config.toml"]
    assert not Path("/etc/kube-monkey/config.toml").exists()
    # a container's own /var/run; on a kwok node, the host's /var/run is a symlink to /run, which the
    # kernel would resolve in this process's root: follow it here
    secrets = next(path for path in (root / "var/run/secrets/kubernetes.io/serviceaccount",
                                     root / "run/secrets/kubernetes.io/serviceaccount") if path.is_dir())
    assert (secrets / "namespace").read_text() == km_ns and (secrets / "ca.crt").read_text().startswith("-----BEGIN")
    environment = dict(line.split("=", 1) for line in Path(f"/proc/{pid}/environ").read_text().split("\0") if line)
    # the API's Service port through a real worker's kube-proxy; the API server's own on a kwok node
    assert environment["KUBERNETES_SERVICE_PORT"] in ("443", "6443") and environment["KUBE_MONKEY_ID"] == f"chaosali-{km_ns}"
    assert "Uid:\t65534" in Path(f"/proc/{pid}/status").read_text()  # its securityContext's user

    def first_kill() -> bool:
        return not before["everything"] <= names(pods(api, ns, "app=everything")) or \
            not before["one"] <= names(pods(api, ns, "app=one"))

    seconds = wait_until(first_kill, 120, step=0.5)
    assert seconds is not None, monkey_log(real, km_ns)[-3000:]
    print(f"\nthe real kube-monkey's first kill {time.monotonic() - started:.1f} s after deploy_kube_monkey")
    assert wait_until(lambda: executed(monkey_log(real, km_ns), "everything") and
                      executed(monkey_log(real, km_ns), "one"), 120) is not None, monkey_log(real, km_ns)[-3000:]
    # the lab's status shows what it scheduled and killed
    status_logs = Cluster(real.lab).status()["pod_logs"]
    assert any("Termination successfully executed" in line for lines in status_logs.values() for line in lines)

    log = monkey_log(real, km_ns)  # a real kubelet removes a pod's logs with the pod
    removed = actions.remove_kube_monkey(namespace=km_ns, configuration=kube_admin)
    assert {d["kind"] for d in removed["deleted"]} >= {"Deployment", "Namespace"}
    assert monkey_processes(real) == []  # its pod was deleted only once its process had stopped
    assert "scheduled for termination" in log

    # only the victims' pods, as many as it says it killed: one of `one` a kill; kill-all deletes each of
    # the 2 pods of `everything` drawn at random, a pod possibly twice (kube-monkey's DeleteRandomPods)
    for name in ("everything", "one"):
        assert wait_until(lambda name=name: available(api, ns, name) == 2, 60) is not None
    report = probes.victim_pods_deleted(namespace=ns, configuration=kube_admin)
    deleted = {victim["name"]: victim["deleted"] for victim in report["victims"]}
    assert deleted["one"] == executed(log, "one"), log[-3000:]
    assert executed(log, "everything") <= deleted["everything"] <= 2 * executed(log, "everything"), log[-3000:]
    assert names(pods(api, ns, "app=bystander")) == before["bystander"]
    if kubelet_process(real.lab) == "kubelet":  # real workers: what containerd runs agrees
        running = running_containers(real)
        for name in ("everything", "one", "bystander"):
            now = {c for p in pods(api, ns, f"app={name}") for c in container_ids(p)}
            gone = {c for p in originals[name] for c in container_ids(p)} - now
            assert now <= running and not gone & running, name  # a deleted pod's container ended with it
            assert len(gone) == len(before[name] - names(pods(api, ns, f"app={name}"))) <= deleted.get(name, 0), name


def test_the_real_kube_monkey_in_dry_run_logs_kills_and_deletes_nothing(kube_admin, api, real, km_ns, ns):
    deployment(api, ns, "shop")
    actions.mark_victims(namespace=ns, name="shop", kill_mode="kill-all", configuration=kube_admin)
    before = names(pods(api, ns, "app=shop"))
    actions.deploy_kube_monkey(namespace=km_ns, whitelisted_namespaces=[ns], schedule_delay=5, dry_run=True,
                               configuration=kube_admin)

    assert wait_until(lambda: "[DryRun Mode] Terminated pod" in monkey_log(real, km_ns), 120) is not None, \
        monkey_log(real, km_ns)[-3000:]
    assert names(pods(api, ns, "app=shop")) == before
    assert probes.victim_pods_deleted(namespace=ns, configuration=kube_admin)["deleted"] == 0


def test_after_unmark_victims_the_real_kube_monkeys_next_pass_kills_nothing(kube_admin, api, real, km_ns, ns):
    deployment(api, ns, "shop")
    actions.mark_victims(namespace=ns, name="shop", configuration=kube_admin)
    actions.deploy_kube_monkey(namespace=km_ns, whitelisted_namespaces=[ns], schedule_delay=5, configuration=kube_admin)
    assert wait_until(lambda: executed(monkey_log(real, km_ns), "shop"), 120) is not None, \
        monkey_log(real, km_ns)[-3000:]

    actions.unmark_victims(namespace=ns, name="shop", configuration=kube_admin)
    after = names(pods(api, ns, "app=shop"))
    offset = len(monkey_log(real, km_ns))
    assert wait_until(lambda: "0 terminations scheduled today" in monkey_log(real, km_ns)[offset:], 120) \
        is not None, monkey_log(real, km_ns)[-3000:]
    assert names(pods(api, ns, "app=shop")) == after
    assert executed(monkey_log(real, km_ns)[offset:], "shop") == 0
