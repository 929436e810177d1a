"""kubectl-like actions and probes against a real kube-apiserver; each test in its own namespace."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes.dynamic import DynamicClient

from chaosali.cluster import actions, probes
from chaosali.cluster.api import new_api_client
from chaosali.core.errors import InvalidArgument
from chaosali.core.secrets import MASK
from helpers import wait_until


@pytest.fixture
def new_namespace(kube_admin: dict) -> Callable[[], str]:
    """Make namespaces of unique names, deleted after the test (without waiting for them)."""
    made: list[str] = []

    def new() -> str:
        made.append(f"chaosali-test-{uuid.uuid4().hex[:8]}")
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": made[-1]}}
        actions.create(manifest=namespace, configuration=kube_admin)
        return made[-1]

    yield new
    for name in made:
        actions.delete(kind="Namespace", name=name, ignore_not_found=True, configuration=kube_admin)


@pytest.fixture
def ns(new_namespace: Callable[[], str]) -> str:
    return new_namespace()


def config_map(name: str, labels: dict | None = None, namespace: str | None = None, **data: str) -> dict:
    metadata = {"name": name, "labels": labels or {}}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def deployment(name: str, containers: list[str], labels: dict | None = None) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": c, "image": f"{c}:1"} for c in containers]},
            },
        },
    }


def names(listing: dict) -> list[str]:
    return sorted(item["metadata"]["name"] for item in listing["items"])


MANIFEST = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: calm
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: reader
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
---
"""


def test_apply_twice_changes_nothing_and_a_change_is_applied(ns, kube_admin, tmp_path: Path):
    path = tmp_path / "manifest.yaml"
    path.write_text(MANIFEST)
    first = actions.apply(path=str(path), namespace=ns, configuration=kube_admin)
    assert [(o["kind"], o["namespace"], o["name"]) for o in first] == [
        ("ConfigMap", ns, "settings"),
        ("Role", ns, "reader"),
    ]
    second = actions.apply(path=str(path), namespace=ns, configuration=kube_admin)
    assert [o["resourceVersion"] for o in second] == [o["resourceVersion"] for o in first]

    changed = actions.apply(manifest=MANIFEST.replace("calm", "storm"), namespace=ns, configuration=kube_admin)
    assert changed[0]["resourceVersion"] != first[0]["resourceVersion"]
    assert changed[1]["resourceVersion"] == first[1]["resourceVersion"]
    assert probes.get("ConfigMap", "settings", ns, configuration=kube_admin)["data"] == {"mode": "storm"}


def test_apply_is_server_side_as_chaosali_and_takes_fields_over_only_with_force(ns, kube_admin, tmp_path):
    actions.apply(manifest=config_map("shared", mode="calm"), namespace=ns, configuration=kube_admin)
    with new_api_client(kube_admin) as api:  # another field manager, as a controller or a colleague would be
        dyn = DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
        config_maps = dyn.resources.get(api_version="v1", kind="ConfigMap")
        managed = config_maps.get(name="shared", namespace=ns).metadata.managedFields
        assert {m.manager: m.operation for m in managed} == {"chaosali": "Apply"}
        dyn.server_side_apply(
            config_maps,
            body=config_map("shared", mode="other"),
            namespace=ns,
            field_manager="someone-else",
            force_conflicts=True,
        )
    conflict = rf"cannot apply ConfigMap 'shared' in namespace '{ns}': conflict \(409\).*someone-else.*with force"
    with pytest.raises(ActivityFailed, match=conflict):
        actions.apply(manifest=config_map("shared", mode="calm"), namespace=ns, configuration=kube_admin)
    actions.apply(manifest=config_map("shared", mode="calm"), namespace=ns, force=True, configuration=kube_admin)
    shown = probes.get("ConfigMap", "shared", ns, configuration=kube_admin)
    assert shown["data"] == {"mode": "calm"}
    assert "managedFields" not in shown["metadata"]  # as kubectl get -o json shows it


def test_create_conflicts_unless_exist_ok(ns, kube_admin):
    created = actions.create(manifest=config_map("once", mode="a"), namespace=ns, configuration=kube_admin)
    assert created[0]["name"] == "once" and created[0]["resourceVersion"]
    exists = rf"cannot create ConfigMap 'once' in namespace '{ns}': conflict \(409\): .*already exists"
    with pytest.raises(ActivityFailed, match=exists):
        actions.create(manifest=config_map("once", mode="b"), namespace=ns, configuration=kube_admin)
    again = actions.create(manifest=config_map("once", mode="b"), namespace=ns, exist_ok=True, configuration=kube_admin)
    assert again == created  # left as it was
    assert probes.get("ConfigMap", "once", ns, configuration=kube_admin)["data"] == {"mode": "a"}


def release(kind: str, name: str, namespace: str, kube_admin: dict) -> None:
    """Remove an object's finalizers (a held object would keep its namespace from going away)."""
    try:
        actions.patch(kind, name, {"metadata": {"finalizers": None}}, "merge", namespace, configuration=kube_admin)
    except ActivityFailed as error:
        assert "not found (404)" in str(error)


def test_delete_with_wait_returns_only_once_the_object_is_gone(ns, kube_admin):
    held = config_map("held", mode="x")
    held["metadata"]["finalizers"] = ["chaosali.dev/hold"]
    actions.create(manifest=held, namespace=ns, configuration=kube_admin)
    releaser = threading.Timer(1.5, release, ("ConfigMap", "held", ns, kube_admin))
    try:
        still = rf"still exist after 0.5 s: ConfigMap 'held' in namespace '{ns}' \(finalizers: chaosali.dev/hold\)"
        with pytest.raises(ActivityFailed, match=still):
            actions.delete(kind="ConfigMap", name="held", namespace=ns, wait=True, timeout=0.5, configuration=kube_admin)
        assert probes.get("ConfigMap", "held", ns, configuration=kube_admin)["metadata"]["deletionTimestamp"]

        started = time.monotonic()
        releaser.start()
        deleted = actions.delete(
            kind="ConfigMap", name="held", namespace=ns, wait=True, timeout=30, configuration=kube_admin
        )
        assert time.monotonic() - started >= 1.5
    finally:
        releaser.cancel()
        if releaser.is_alive():
            releaser.join()
        release("ConfigMap", "held", ns, kube_admin)
    assert [(d["kind"], d["namespace"], d["name"]) for d in deleted] == [("ConfigMap", ns, "held")]
    with pytest.raises(ActivityFailed, match=rf"cannot get ConfigMap 'held' in namespace '{ns}': not found \(404\)"):
        probes.get("ConfigMap", "held", ns, configuration=kube_admin)


def test_delete_by_label_selector_deletes_exactly_the_matching_objects(ns, new_namespace, kube_admin):
    other_ns = new_namespace()
    actions.apply(
        manifest=[
            config_map("a", {"app": "x"}),
            config_map("b", {"app": "x", "tier": "db"}),
            config_map("c", {"app": "y"}),
        ],
        namespace=ns,
        configuration=kube_admin,
    )
    actions.apply(manifest=config_map("d", {"app": "x"}), namespace=other_ns, configuration=kube_admin)
    deleted = actions.delete(kind="configmaps", label_selector="app=x", namespace=ns, wait=True, configuration=kube_admin)
    assert sorted((d["namespace"], d["name"]) for d in deleted) == [(ns, "a"), (ns, "b")]
    assert all(d["uid"] for d in deleted)
    left = probes.get("ConfigMap", namespace=ns, label_selector="app", configuration=kube_admin)
    assert names(left) == ["c"]
    assert names(probes.get("ConfigMap", namespace=other_ns, label_selector="app", configuration=kube_admin)) == ["d"]
    assert actions.delete(kind="ConfigMap", label_selector="app=x", namespace=ns, configuration=kube_admin) == []


def test_delete_in_foreground_waits_for_the_dependents(ns, kube_admin):
    actions.apply(manifest=deployment("web", ["app"]), namespace=ns, configuration=kube_admin)
    def replica_sets() -> list[dict]:
        return probes.get("ReplicaSet", namespace=ns, configuration=kube_admin)["items"]

    assert wait_until(replica_sets, 30) is not None, "the deployment controller made no ReplicaSet"
    owned = replica_sets()[0]["metadata"]["name"]
    hold = {"metadata": {"finalizers": ["chaosali.dev/hold"]}}
    actions.patch("ReplicaSet", owned, hold, "merge", ns, configuration=kube_admin)
    try:
        still = rf"still exist after 1 s: Deployment 'web' in namespace '{ns}' \(finalizers: foregroundDeletion\)"
        with pytest.raises(ActivityFailed, match=still):  # the Deployment waits for the ReplicaSet it owns
            actions.delete(
                kind="Deployment", name="web", namespace=ns, cascade="foreground", wait=True, timeout=1,
                configuration=kube_admin,
            )
    finally:
        release("ReplicaSet", owned, ns, kube_admin)
    actions.delete(kind="Deployment", name="web", namespace=ns, ignore_not_found=True, wait=True, configuration=kube_admin)
    assert probes.get("ReplicaSet", namespace=ns, configuration=kube_admin)["items"] == []


def test_delete_by_manifest_and_ignore_not_found(ns, kube_admin):
    manifest = [config_map("one"), deployment("two", ["web"])]
    actions.apply(manifest=manifest, namespace=ns, configuration=kube_admin)
    deleted = actions.delete(manifest=manifest, namespace=ns, configuration=kube_admin)
    assert [(d["kind"], d["name"]) for d in deleted] == [("ConfigMap", "one"), ("Deployment", "two")]
    gone = rf"cannot delete ConfigMap 'one' in namespace '{ns}': not found \(404\)"
    with pytest.raises(ActivityFailed, match=gone):
        actions.delete(manifest=manifest, namespace=ns, configuration=kube_admin)
    assert actions.delete(manifest=manifest, namespace=ns, ignore_not_found=True, configuration=kube_admin) == []


def test_patch_strategic_merge_and_json_each_do_their_own_thing(ns, kube_admin):
    actions.apply(manifest=deployment("web", ["app", "sidecar"]), namespace=ns, configuration=kube_admin)

    def containers() -> dict:
        spec = probes.get("Deployment", "web", ns, configuration=kube_admin)["spec"]["template"]["spec"]
        return {c["name"]: c["image"] for c in spec["containers"]}

    one = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}}
    before = probes.get("Deployment", "web", ns, configuration=kube_admin)["metadata"]["resourceVersion"]
    patched = actions.patch("Deployment", "web", one, namespace=ns, configuration=kube_admin)  # strategic by default
    assert patched["resourceVersion"] != before
    assert containers() == {"app": "app:2", "sidecar": "sidecar:1"}  # merged by container name

    one["spec"]["template"]["spec"]["containers"][0]["image"] = "app:3"
    actions.patch("deploy", "web", one, "merge", ns, configuration=kube_admin)
    assert containers() == {"app": "app:3"}  # a merge patch replaces the list

    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 4},
    ]
    actions.patch("deployments.apps", "web", json.dumps(ops), namespace=ns, configuration=kube_admin)
    assert probes.get("Deployment", "web", ns, configuration=kube_admin)["spec"]["replicas"] == 4
    with pytest.raises(ActivityFailed, match=rf"cannot patch Deployment 'web' in namespace '{ns}': invalid \(422\)"):
        actions.patch("Deployment", "web", ops, "json", ns, configuration=kube_admin)  # the "test" op now fails
    with pytest.raises(InvalidArgument, match="a JSON patch is a list of operations"):
        actions.patch("Deployment", "web", {"spec": {}}, "json", ns, configuration=kube_admin)


def test_get_by_label_and_field_selectors_as_kubectl_json(ns, kube_admin):
    actions.apply(
        manifest=[config_map("a", {"app": "x"}), config_map("b", {"app": "x"}), config_map("c", {"app": "y"})],
        namespace=ns,
        configuration=kube_admin,
    )
    listing = probes.get("ConfigMap", namespace=ns, label_selector="app=x", configuration=kube_admin)
    assert {k: listing[k] for k in ("apiVersion", "kind", "metadata")} == {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    }
    assert names(listing) == ["a", "b"]
    assert all(item["kind"] == "ConfigMap" and item["apiVersion"] == "v1" for item in listing["items"])
    assert json.loads(json.dumps(listing)) == listing  # plain JSON, as the journal needs
    assert names(probes.get("cm", namespace=ns, field_selector="metadata.name=c", configuration=kube_admin)) == ["c"]
    both = probes.get(
        "ConfigMap", namespace=ns, label_selector="app=x", field_selector="metadata.name!=a", configuration=kube_admin
    )
    assert names(both) == ["b"]

    one = probes.get("ConfigMap", "a", ns, configuration=kube_admin)
    assert (one["kind"], one["metadata"]["namespace"], one["metadata"]["labels"]) == ("ConfigMap", ns, {"app": "x"})
    assert isinstance(one["metadata"]["creationTimestamp"], str)
    json.dumps(one)


def test_get_in_all_namespaces(ns, new_namespace, kube_admin):
    other_ns = new_namespace()
    mark = {"chaosali-test": uuid.uuid4().hex[:8]}
    actions.apply(manifest=config_map("here", mark), namespace=ns, configuration=kube_admin)
    actions.apply(manifest=config_map("there", mark), namespace=other_ns, configuration=kube_admin)
    selector = f"chaosali-test={mark['chaosali-test']}"
    everywhere = probes.get("ConfigMap", label_selector=selector, all_namespaces=True, configuration=kube_admin)
    assert sorted((i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere["items"]) == sorted(
        [(ns, "here"), (other_ns, "there")]
    )
    assert names(probes.get("ConfigMap", namespace=ns, label_selector=selector, configuration=kube_admin)) == ["here"]
    with pytest.raises(InvalidArgument, match="name and all_namespaces exclude each other"):
        probes.get("ConfigMap", "here", all_namespaces=True, configuration=kube_admin)


def test_kind_spellings_name_the_same_resource(ns, kube_admin):
    actions.apply(manifest=deployment("web", ["app"]), namespace=ns, configuration=kube_admin)
    for kind in ("Deployment", "deployment", "deployments", "deploy", "deployments.apps"):
        assert names(probes.get(kind, namespace=ns, configuration=kube_admin)) == ["web"], kind
    assert names(probes.get("Deployment", namespace=ns, api_version="apps/v1", configuration=kube_admin)) == ["web"]
    with pytest.raises(ActivityFailed, match=r"kind 'Deployment' is not served in apps/v1beta1; it is in apps/v1"):
        probes.get("Deployment", namespace=ns, api_version="apps/v1beta1", configuration=kube_admin)


def test_unknown_kind_is_named_with_a_suggestion(ns, kube_admin):
    with pytest.raises(ActivityFailed, match=r"unknown kind 'Deploymnt'.*did you mean Deployment\?.*api_version"):
        probes.get("Deploymnt", namespace=ns, configuration=kube_admin)
    with pytest.raises(ActivityFailed, match=r"unknown kind 'Gizmo' in nowhere\.chaosali\.dev/v1: the API server"):
        actions.apply(
            manifest={"apiVersion": "nowhere.chaosali.dev/v1", "kind": "Gizmo", "metadata": {"name": "g"}},
            namespace=ns,
            configuration=kube_admin,
        )


def test_forbidden_names_the_kind_namespace_and_user(ns, kube_admin, kube):
    readonly = {"kubeconfig_path": str(kube.readonly_kubeconfig)}
    actions.apply(manifest=config_map("visible"), namespace=ns, configuration=kube_admin)
    assert probes.get("ConfigMap", "visible", ns, configuration=readonly)["metadata"]["name"] == "visible"
    with pytest.raises(ActivityFailed) as error:
        actions.create(manifest=config_map("blocked"), namespace=ns, configuration=readonly)
    message = str(error.value)
    assert message.startswith(f"cannot create ConfigMap 'blocked' in namespace '{ns}': forbidden (403)")
    assert 'User "' in message and "cannot create resource" in message
    assert "lacks the RBAC permission" in message


def test_invalid_object_gives_the_servers_causes(ns, kube_admin):
    bad = deployment("bad", ["app"])
    bad["spec"]["selector"]["matchLabels"] = {"app": "other"}
    invalid = rf"cannot create Deployment 'bad' in namespace '{ns}': invalid \(422\)"
    with pytest.raises(ActivityFailed, match=invalid) as error:
        actions.create(manifest=bad, namespace=ns, configuration=kube_admin)
    assert "spec.template.metadata.labels" in str(error.value)
    assert "`selector` does not match template `labels`" in str(error.value)


def test_malformed_selector_is_the_servers_400(ns, kube_admin):
    malformed = rf"cannot list ConfigMap in namespace '{ns}': bad request \(400\): unable to parse"
    with pytest.raises(ActivityFailed, match=malformed):
        probes.get("ConfigMap", namespace=ns, label_selector="app in (x", configuration=kube_admin)


def test_manifest_namespace_mismatch_and_missing_arguments_are_refused(ns, kube_admin):
    with pytest.raises(InvalidArgument, match=f"names namespace 'elsewhere' but namespace '{ns}' was given"):
        actions.apply(manifest=config_map("m", namespace="elsewhere"), namespace=ns, configuration=kube_admin)
    with pytest.raises(InvalidArgument, match="give either path .* or manifest"):
        actions.apply(configuration=kube_admin)
    with pytest.raises(InvalidArgument, match="document 1 is not a Kubernetes object"):
        actions.create(manifest="just: text", configuration=kube_admin)
    with pytest.raises(InvalidArgument, match="give either name or label_selector"):
        actions.delete(kind="ConfigMap", configuration=kube_admin)
    with pytest.raises(InvalidArgument, match="give either kind .* or path/manifest"):
        actions.delete(name="orphan-name", configuration=kube_admin)
    with pytest.raises(InvalidArgument, match="cascade must be one of background, foreground, orphan"):
        actions.delete(kind="ConfigMap", name="x", cascade="sideways", configuration=kube_admin)
    with pytest.raises(InvalidArgument, match="grace_period_seconds -1 must be a whole number of 0 or more"):
        actions.delete(kind="ConfigMap", name="x", grace_period_seconds=-1, configuration=kube_admin)


def test_a_custom_resource_definition_and_its_objects(ns, kube_admin):
    group = f"t{uuid.uuid4().hex[:8]}.chaosali.dev"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wdg"]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "size": {"type": "integer"},
                                        "tags": {"type": "array", "items": {"type": "string"}},
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    widget = {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "labels": {"team": "chaos"}},
        "spec": {"size": 1, "tags": ["a", "b"]},
    }
    try:
        assert actions.apply(manifest=crd, configuration=kube_admin)[0]["namespace"] is None  # cluster-scoped
        def established() -> bool:
            crd = probes.get("CustomResourceDefinition", f"widgets.{group}", configuration=kube_admin)
            return any(c["type"] == "Established" and c["status"] == "True"
                       for c in crd.get("status", {}).get("conditions", []))

        assert wait_until(established, 30) is not None, "the CRD never became Established"

        first = actions.apply(manifest=widget, namespace=ns, configuration=kube_admin)
        assert first == actions.apply(manifest=widget, namespace=ns, configuration=kube_admin)
        assert (first[0]["kind"], first[0]["apiVersion"], first[0]["namespace"]) == ("Widget", f"{group}/v1", ns)
        for kind in ("Widget", "widgets", "wdg", f"widgets.{group}"):
            assert names(probes.get(kind, namespace=ns, label_selector="team=chaos", configuration=kube_admin)) == ["w1"]

        tags = {"spec": {"tags": ["c"]}}
        actions.patch("Widget", "w1", tags, namespace=ns, api_version=f"{group}/v1", configuration=kube_admin)
        assert probes.get("wdg", "w1", ns, configuration=kube_admin)["spec"] == {"size": 1, "tags": ["c"]}  # merged
        with pytest.raises(ActivityFailed, match=r"unsupported media type \(415\)"):
            actions.patch("wdg", "w1", {"spec": {"size": 2}}, "strategic", ns, configuration=kube_admin)

        deleted = actions.delete(manifest=widget, namespace=ns, wait=True, configuration=kube_admin)
        assert [(d["kind"], d["name"]) for d in deleted] == [("Widget", "w1")]
        assert probes.get("Widget", namespace=ns, configuration=kube_admin)["items"] == []
    finally:
        actions.delete(manifest=crd, ignore_not_found=True, wait=True, configuration=kube_admin)
    with pytest.raises(ActivityFailed, match=f"cannot get CustomResourceDefinition 'widgets.{group}': not found"):
        probes.get("crd", f"widgets.{group}", configuration=kube_admin)


def test_api_ready(kube_admin):
    assert probes.api_ready(configuration=kube_admin) is True


# -- get and Secrets: their data masked unless asked (moved from the report tests) ----------------------


def test_get_masks_a_secrets_data_unless_asked(monkeypatch):
    from chaosali.cluster import resources

    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": '{"stringData": {"password": "pw-in-annotation"}}'}},
              "type": "Opaque", "data": {"password": "cA=="}}
    found: dict = {}

    class Where:
        class resource:
            kind = found.setdefault("kind", "Secret")

    class Connection:
        def __enter__(self):
            return None

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(resources, "connect", lambda *a: Connection())
    monkeypatch.setattr(resources, "locate", lambda *a: Where)
    monkeypatch.setattr(resources, "get", lambda dyn, where, *a: found["answer"])
    found["answer"] = secret
    masked = probes.get("Secret", "db", "demo")
    assert masked["data"] == MASK and "pw-in-annotation" not in json.dumps(masked)
    assert secret["data"] == {"password": "cA=="}, "the object read is left as it was"
    assert probes.get("Secret", "db", "demo", show_secret_data=True) == secret
    found["answer"] = {"kind": "List", "items": [{k: v for k, v in secret.items() if k != "kind"}]}
    assert probes.get("secrets", namespace="demo", label_selector="app=db")["items"][0]["data"] == MASK
    with pytest.raises(InvalidArgument, match="show_secret_data"):
        probes.get("Secret", "db", show_secret_data="maybe")


def test_get_of_a_secret_in_the_lab_returns_it_masked(kube):
    from chaosali.cluster.actions import create, delete
    from chaosali.cluster.probes import get

    configuration = kube.admin
    create(manifest={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "report-test"},
                     "stringData": {".dockerconfigjson": '{"auths": {}}', "credentials": "lab-c4-value"}},
           namespace="default", exist_ok=True, configuration=configuration)
    try:
        one = get("Secret", "report-test", "default", configuration=configuration)
        listed = get("Secret", namespace="default", field_selector="metadata.name=report-test",
                     configuration=configuration)
        shown = get("Secret", "report-test", "default", show_secret_data=True, configuration=configuration)
    finally:
        delete("Secret", "report-test", namespace="default", configuration=configuration)
    assert one["data"] == MASK and listed["items"][0]["data"] == MASK
    assert "lab-c4-value" not in json.dumps([one, listed])
    assert base64.b64decode(shown["data"]["credentials"]) == b"lab-c4-value"
