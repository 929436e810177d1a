"""What runs on the targeted hosts: their nodes, the workloads with pods there, and the
PodDisruptionBudgets over those pods. Read-only: list and read requests, nothing else.

A node is targeted when one of its addresses (or its ``node_ssh_addresses`` entry) is a
targeted host's address, as the random drill's caps count them. Every pod of a targeted node
counts as touched: the worst case of a fault on its host.
"""

from __future__ import annotations

from typing import Any, Callable

from chaoslib.types import Configuration, Secrets
from kubernetes import client

from chaosali.cluster.api import Connection, connect
from chaosali.cluster.rollout import replicas, selector_text

__all__ = ["exposure"]

# kind -> how to read it (its replicas: rollout.replicas, as the impact recorder reads them)
_WORKLOADS: dict[str, Callable[[client.AppsV1Api], Callable[..., Any]]] = {
    "Deployment": lambda apps: apps.read_namespaced_deployment,
    "StatefulSet": lambda apps: apps.read_namespaced_stateful_set,
    "ReplicaSet": lambda apps: apps.read_namespaced_replica_set,
    "DaemonSet": lambda apps: apps.read_namespaced_daemon_set,
}


def exposure(addresses: list[str], configuration: Configuration, secrets: Secrets) -> dict:
    """The cluster's nodes (those hit among them), the workloads on the hit nodes and the budgets
    over their pods, for hosts at ``addresses``."""
    configured = (configuration or {}).get("node_ssh_addresses") or {}
    with connect(configuration, secrets) as cluster:
        core = client.CoreV1Api(cluster.client)
        nodes = cluster.call("list the nodes", core.list_node).items
        hit = sorted(n.metadata.name for n in nodes if _addresses(n, configured) & set(addresses))
        pods = [pod for name in hit for pod in cluster.call(
            f"list the pods of node {name}", core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={name}"
        ).items if pod.status.phase not in ("Succeeded", "Failed")]
        workloads = _workloads(cluster, pods)
        budgets = _budgets(cluster, core, pods)
    known = {a for n in nodes for a in _addresses(n, configured)}
    return {
        "nodes": {"hit": hit, "of": len(nodes), "all": sorted(n.metadata.name for n in nodes)},
        "not_nodes": sorted(set(addresses) - known),
        "workloads": workloads,
        "budgets": budgets,
    }


def _addresses(node: client.V1Node, configured: dict) -> set[str]:
    name = node.metadata.name
    return {a.address for a in node.status.addresses or []} | ({configured[name]} if name in configured else set())


def _ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _workloads(cluster: Connection, pods: list[client.V1Pod]) -> list[dict]:
    """Each workload with pods on the hit nodes: its ready and desired replicas, the pods touched."""
    apps = client.AppsV1Api(cluster.client)
    owners: dict[tuple[str, str], tuple[str, str]] = {}  # (namespace, ReplicaSet) -> its owner's (kind, name)
    found: dict[str, dict] = {}
    for pod in pods:
        namespace = pod.metadata.namespace
        kind, name = _controller(pod.metadata) or ("Pod", pod.metadata.name)
        if kind == "ReplicaSet":
            if (namespace, name) not in owners:
                replica_set = cluster.call(f"read ReplicaSet {namespace}/{name}", apps.read_namespaced_replica_set,
                                           name, namespace)
                owners[namespace, name] = _controller(replica_set.metadata) or (kind, name)
            kind, name = owners[namespace, name]
        elif kind == "Node":  # a static pod: its mirror is a workload of its own
            kind, name = "Pod", pod.metadata.name
        entry = found.get(f"{kind} {namespace}/{name}")
        if entry is None:
            entry = found[f"{kind} {namespace}/{name}"] = {
                "workload": f"{kind} {namespace}/{name}", "kind": kind, "namespace": namespace, "name": name,
                **_replicas(cluster, apps, kind, namespace, name), "pods": []}
        entry["pods"].append({"pod": pod.metadata.name, "node": pod.spec.node_name, "ready": _ready(pod)})
    for entry in found.values():
        entry["touched"] = sum(pod["ready"] for pod in entry["pods"])
        if entry["ready"] is None:  # a bare or static pod: what is touched is all there is
            entry["ready"] = entry["desired"] = entry["touched"]
        entry["percent"] = round(100 * entry["touched"] / entry["ready"], 1) if entry["ready"] else 0.0
    return sorted(found.values(), key=lambda entry: entry["workload"])


def _controller(metadata: client.V1ObjectMeta) -> tuple[str, str] | None:
    return next(((r.kind, r.name) for r in metadata.owner_references or [] if r.controller), None)


def _replicas(cluster: Connection, apps: client.AppsV1Api, kind: str, namespace: str, name: str) -> dict:
    if kind not in _WORKLOADS:
        return {"ready": None, "desired": None}
    workload = cluster.call(f"read {kind} {namespace}/{name}", _WORKLOADS[kind](apps), name, namespace)
    return _counts(kind, workload, cluster.client.sanitize_for_serialization)


def _counts(kind: str, workload: Any, serialize: Callable[[Any], Any]) -> dict:
    """A workload's ready and desired replicas, read from its JSON as the impact recorder reads them."""
    desired, ready = replicas(kind, serialize(workload))
    return {"ready": ready, "desired": desired}


def _budgets(cluster: Connection, core: client.CoreV1Api, pods: list[client.V1Pod]) -> list[dict]:
    """Each budget over the touched pods: how many more it allows to lose now, and how many ready
    pods of its the targets run (more than it allows: the fault would violate it)."""
    policy = client.PolicyV1Api(cluster.client)
    budgets = []
    for namespace in sorted({pod.metadata.namespace for pod in pods}):
        here = {pod.metadata.name for pod in pods if pod.metadata.namespace == namespace and _ready(pod)}
        listed = cluster.call(f"list the PodDisruptionBudgets of namespace {namespace}",
                              policy.list_namespaced_pod_disruption_budget, namespace).items
        for budget in listed:
            selector = selector_text(cluster.client.sanitize_for_serialization(budget.spec.selector) or {})
            covered = {p.metadata.name for p in cluster.call(
                f"list the pods of PodDisruptionBudget {namespace}/{budget.metadata.name}",
                core.list_namespaced_pod, namespace, label_selector=selector).items}
            touched = sorted(here & covered)
            if not touched:
                continue
            allowed = (budget.status.disruptions_allowed or 0) if budget.status else 0
            budgets.append({"budget": f"{namespace}/{budget.metadata.name}", "selector": selector,
                            "allowed": allowed, "touched": touched, "violated": len(touched) > allowed})
    return budgets
