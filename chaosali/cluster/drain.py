"""Pod migration: drain nodes as ``kubectl drain`` does (cordon, then evict through the Eviction API,
which honours PodDisruptionBudgets), and uncordon what a drain cordoned.

A drained node carries ``chaosali/cordoned-by`` (the drain's id), so the rollback makes schedulable
again only the nodes a drain cordoned, never one an operator cordoned on purpose.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from chaoslib.types import Configuration, Secrets
from kubernetes import client

from chaosali.cluster.api import ApiFailed, Connection, connect
from chaosali.cluster.nodes import select_hosts
from chaosali.core import evidence, ledger, memory, undo
from chaosali.core.args import seconds
from chaosali.core.errors import InvalidArgument
from chaosali.core.markers import CORDONED_BY_ANNOTATION, RUN_ANNOTATION, new_fault_id
from chaosali.core.waiting import wait_until

__all__ = ["drain", "uncordon"]

logger = logging.getLogger("chaostoolkit")

_MIRROR = "kubernetes.io/config.mirror"
_RETRY = 1.0  # seconds between evictions a budget refused: the budget may allow them once pods are back


def drain(targets: Any, timeout: Any, configuration: Configuration, secrets: Secrets) -> dict:
    """Cordon the query's nodes, then evict their pods until none is left to evict or ``timeout``.
    Its record ends once the evictions are done (the workload's recovery counts from then) and
    closes when its cordons are lifted."""
    deadline = time.monotonic() + seconds(timeout, "timeout")
    drain_id = new_fault_id()
    with ledger.attempt("drain", targets):
        nodes = [host["name"] for host in select_hosts(_query(targets), configuration, secrets)["hosts"]]
    output: dict[str, Any] = {"drain_id": drain_id, "nodes": nodes, "started_at": _now(), "evicted": [],
                              "blocked": [], "skipped": []}
    with connect(configuration, secrets) as cluster, \
            ledger.injecting("drain", [f"node {node}" for node in nodes], drain_id) as record:
        core = client.CoreV1Api(cluster.client)
        # known to the run before any node is cordoned, and the cordons done before a halt heals
        _remember(record, nodes, cluster.client.configuration.host, configuration, secrets)
        for node in nodes:
            cordon = {"spec": {"unschedulable": True},
                      "metadata": {"annotations": {CORDONED_BY_ANNOTATION: drain_id, RUN_ANNOTATION: record.run}}}
            cluster.call(f"cordon node {node}", core.patch_node, node, cordon)
            record.started = record.started or _now()
        ledger.save()
        _evict_all(cluster, core, nodes, deadline, output)
    ledger.ended(drain_id)
    output["finished_at"] = _now()
    logger.info("chaosali: drained %s: %d evicted, %d blocked by a budget, %d skipped", ", ".join(nodes),
                len(output["evicted"]), len(output["blocked"]), len(output["skipped"]))
    # a drain that evicted nothing moved no workload: the drill did not happen
    evidence.observed(f"drain of {', '.join(nodes)}", bool(output["evicted"]),
                      f"{len(output['evicted'])} pods evicted, {len(output['blocked'])} blocked by a budget, "
                      f"{len(output['skipped'])} skipped")
    return output


def _evict_all(cluster: Connection, core: client.CoreV1Api, nodes: list[str], deadline: float, output: dict) -> None:
    """Evict the nodes' pods until none is left to evict or the deadline; ``output`` tells each."""
    waiting: dict[str, client.V1Pod] = {}
    for node in nodes:
        listing = cluster.call(f"list the pods of node {node}", core.list_pod_for_all_namespaces,
                               field_selector=f"spec.nodeName={node}").items
        for pod in listing:
            why = _skipped(pod)
            if why:
                output["skipped"].append({"pod": _name(pod), "node": node, "why": why})
            else:
                waiting[_name(pod)] = pod
    refusals: dict[str, str] = {}

    def evict_waiting() -> dict[str, client.V1Pod]:
        for name, pod in list(waiting.items()):
            outcome, why = _evict(cluster, core, pod)
            if outcome == "blocked":
                refusals[name] = str(why)  # a refusal always says why
                continue
            entry = {"pod": name, "node": pod.spec.node_name}
            output[outcome].append({**entry, "why": why} if why else entry)
            del waiting[name]
        return waiting

    wait_until(evict_waiting, deadline, _RETRY, lambda left: not left)
    output["blocked"] = [{"pod": name, "node": pod.spec.node_name, "why": refusals[name]}
                         for name, pod in waiting.items()]


def uncordon(targets: Any, configuration: Configuration, secrets: Secrets) -> dict:
    """Make schedulable again the nodes a drain cordoned: among the query's nodes (every one it may
    choose, unsampled), or in the whole cluster when ``targets`` is None."""
    with connect(configuration, secrets) as cluster:
        core = client.CoreV1Api(cluster.client)
        if targets is None:
            names = [node.metadata.name for node in cluster.call("list the nodes", core.list_node).items]
        else:
            query = {key: value for key, value in _query(targets).items() if key not in ("count", "percent", "seed")}
            names = [host["name"] for host in select_hosts(query, configuration, secrets, empty_ok=True)["hosts"]]
        uncordoned = _uncordon(cluster, core, names)
    logger.info("chaosali: uncordoned %s", ", ".join(uncordoned) or "nothing (no node cordoned by a drain)")
    return {"uncordoned": uncordoned}


def _uncordon(cluster: Connection, core: client.CoreV1Api, names: list[str], drain_id: str | None = None) -> list[str]:
    """Uncordon those of the nodes a drain cordoned (``drain_id``'s, or any drain's); the names.
    Each drain's record closes once none of its nodes is cordoned."""
    uncordoned = []
    drains = set()
    for name, by in _cordoned(cluster, core, names, drain_id):
        uncordon = {"spec": {"unschedulable": False},
                    "metadata": {"annotations": {CORDONED_BY_ANNOTATION: None, RUN_ANNOTATION: None}}}
        cluster.call(f"uncordon node {name}", core.patch_node, name, uncordon)
        uncordoned.append(name)
        drains.add(by)
    for by in drains:
        ledger.closed(by)
    return uncordoned


def _cordoned(cluster: Connection, core: client.CoreV1Api, names: list[str],
              drain_id: str | None) -> list[tuple[str, str]]:
    """Those of the nodes that still carry a drain's cordon (``drain_id``'s, or any drain's), with
    the drain's id."""
    found = []
    for name in names:
        node = cluster.call(f"read node {name}", core.read_node, name)
        by = (node.metadata.annotations or {}).get(CORDONED_BY_ANNOTATION)
        if by is not None and drain_id in (None, by):
            found.append((name, by))
    return found


_DRAINS = "drains of this run"


def _remember(record: ledger.Fault, nodes: list[str], server: str, configuration: Configuration,
              secrets: Secrets) -> None:
    """How to uncordon the drain's nodes at once, or later from the ledger, and to check that none
    is left cordoned."""
    def heal() -> dict:
        with connect(configuration, secrets) as cluster:
            return {"uncordoned": _uncordon(cluster, client.CoreV1Api(cluster.client), nodes, record.id)}

    memory.section(_DRAINS)[record.id] = nodes
    record.heal = heal
    record.undo = {"by": "uncordon", "nodes": nodes, "drain_id": record.id, "server": server}
    ledger.save()  # on disk before any node is cordoned: a run killed from here on is healed by cleanup
    undo.add_check("drains", lambda: _still_cordoned(configuration, secrets))


@ledger.healer("uncordon")
def _heal_from_record(undo_spec: dict, configuration: dict, secrets: dict) -> None:
    ledger.same_cluster(undo_spec, configuration)
    with connect(configuration, secrets) as cluster:
        ledger.same_cluster(undo_spec, configuration, cluster.client.configuration.host)
        _uncordon(cluster, client.CoreV1Api(cluster.client), undo_spec["nodes"], undo_spec["drain_id"])


def _still_cordoned(configuration: Configuration, secrets: Secrets) -> list[dict]:
    with connect(configuration, secrets) as cluster:
        core = client.CoreV1Api(cluster.client)
        drains = memory.section(_DRAINS).items()
        cordoned = {(name, drain_id) for drain_id, nodes in drains
                    for name, _ in _cordoned(cluster, core, nodes, drain_id)}
    return [{"where": f"node {name}", "cleanup": "chaosali cleanup --var-file VARS (its kubeconfig_path: the drain's cordons)",
             "left": [{"what": "cordon", "detail": f"{CORDONED_BY_ANNOTATION}={drain_id}"}
                      for drained, drain_id in sorted(cordoned) if drained == name]}
            for name in sorted({name for _, nodes in drains for name in nodes})]


def _query(targets: Any) -> dict:
    if not isinstance(targets, dict):
        raise InvalidArgument(f"targets {targets!r} must be a cluster query such as "
                              '{"nodes": "node-role.kubernetes.io/worker"} or '
                              '{"pods": {"namespace", "label_selector"}}')
    return targets


def _skipped(pod: client.V1Pod) -> str | None:
    """Why a drain leaves a pod alone, as kubectl drain --ignore-daemonsets does, or None."""
    if _MIRROR in (pod.metadata.annotations or {}):
        return "mirror pod (a static pod of the node's kubelet: eviction cannot remove it)"
    if any(owner.kind == "DaemonSet" for owner in pod.metadata.owner_references or []):
        return "DaemonSet pod (its controller would put it back on the node)"
    if pod.metadata.deletion_timestamp:
        return "already terminating"
    return None


def _evict(cluster: Connection, core: client.CoreV1Api, pod: client.V1Pod) -> tuple[str, str | None]:
    """Evict one pod: ("evicted", None), ("blocked", the budget's refusal) or ("skipped", why)."""
    name, namespace = pod.metadata.name, pod.metadata.namespace
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace))
    try:
        cluster.call(f"evict pod {namespace}/{name}", core.create_namespaced_pod_eviction, name, namespace, body)
    except ApiFailed as error:
        if error.status == 404:
            return "skipped", "gone already"
        if error.status == 429:  # a PodDisruptionBudget allows no disruption now
            return "blocked", error.reason
        # an eviction is refused in a namespace being deleted: its pods go with it anyway
        if error.status == 403 and _terminating(cluster, core, namespace):
            return "skipped", "its namespace is being deleted"
        raise
    return "evicted", None


def _terminating(cluster: Connection, core: client.CoreV1Api, namespace: str) -> bool:
    found = cluster.call(f"read namespace {namespace}", core.read_namespace, namespace)
    return found.status.phase == "Terminating"


def _name(pod: client.V1Pod) -> str:
    return f"{pod.metadata.namespace}/{pod.metadata.name}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()
