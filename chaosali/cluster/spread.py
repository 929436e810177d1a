"""Where a Deployment's replicas stand against its own ``topologySpreadConstraints``, and putting
them back where the constraints want them after a disruption, as a rollout does.

A drain, an eviction or a lost node leaves the replacements wherever the scheduler could put them
then (on the surviving node); once the node is back the constraints are violated, and the
scheduler never moves a running pod. Production runs the descheduler
(``RemovePodsViolatingTopologySpreadConstraint``) or restarts the rollout for that; here a
rollout restart (as ``kubectl rollout restart``) makes every pod again, and constraints with
``whenUnsatisfiable: DoNotSchedule`` and ``matchLabelKeys: [pod-template-hash]`` place the new
ones exactly. The judgement of a placement (:func:`placement`) is pure: the scheduler's skew,
over the nodes a new pod could go to.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from chaosali.cluster.api import Connection
from chaosali.core.waiting import wait_until

__all__ = ["placement", "placement_now", "misplacement", "respread"]

logger = logging.getLogger("chaostoolkit")

# kubectl's own annotation: `kubectl rollout history` and users read it as a restart
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def placement(deployment: dict, pods: list[dict], nodes: list[dict]) -> dict[str, Any]:
    """How the Deployment's live pods stand against its spread constraints (JSON as the API gives
    it): per constraint its domains (pods per topology value, over the nodes a new pod could go
    to: Ready, schedulable, no taint the pod does not tolerate, its nodeSelector met), the skew and
    whether it holds; ``misplaced``, pods on a node no new pod could go to (cordoned, NotReady);
    ``holds``: every constraint holds and no pod is misplaced."""
    template = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    eligible = {node["metadata"]["name"]: node for node in nodes if _takes(node, template)}
    live = [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") in ("Pending", "Running")]
    misplaced = sorted(pod["metadata"]["name"] for pod in live
                       if (pod.get("spec") or {}).get("nodeName") and pod["spec"]["nodeName"] not in eligible)
    constraints = []
    for constraint in template.get("topologySpreadConstraints") or []:
        key = constraint["topologyKey"]
        domains = {node["metadata"]["labels"][key]: 0 for node in eligible.values()
                   if key in (node["metadata"].get("labels") or {})}
        for pod in live:
            node = eligible.get((pod.get("spec") or {}).get("nodeName") or "")
            value = node and (node["metadata"].get("labels") or {}).get(key)
            if value in domains:
                domains[value] += 1
        skew = max(domains.values()) - min(domains.values()) if domains else 0
        constraints.append({"topology_key": key, "max_skew": constraint.get("maxSkew", 1), "domains": domains,
                            "skew": skew, "holds": skew <= constraint.get("maxSkew", 1)})
    return {"constraints": constraints, "misplaced": misplaced,
            "holds": not misplaced and all(c["holds"] for c in constraints)}


def _takes(node: dict, template: dict) -> bool:
    """Whether a new pod of ``template`` could be scheduled to ``node`` (the checks a spread needs)."""
    spec, labels = node.get("spec") or {}, node["metadata"].get("labels") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in (node.get("status") or {}).get("conditions") or [])
    selected = all(labels.get(key) == value for key, value in (template.get("nodeSelector") or {}).items())
    tolerations = template.get("tolerations") or []
    blocked = [taint for taint in spec.get("taints") or [] if taint.get("effect") in ("NoSchedule", "NoExecute")
               and not any(_tolerates(toleration, taint) for toleration in tolerations)]
    return ready and selected and not spec.get("unschedulable") and not blocked


def _tolerates(toleration: dict, taint: dict) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return toleration.get("key") == taint.get("key") and toleration.get("value") == taint.get("value")


def respread(cluster: Connection, namespace: str, name: str, timeout: float, attempts: int = 3) -> dict[str, Any]:
    """Restart the rollout of Deployment ``namespace/name`` while its placement does not hold (at
    most ``attempts`` times), each time waiting until it has rolled out and its old pods are gone.
    Returns the placement ``before`` and ``after`` and the ``restarts``; a Deployment whose spread
    still does not hold fails, naming its domains."""
    before = placement_now(cluster, namespace, name)
    now, restarts = before, 0
    while not now["holds"] and restarts < attempts:
        restarts += 1
        logger.info("chaosali: Deployment %s/%s is not spread as its constraints want (%s): restarting its rollout",
                    namespace, name, misplacement(now))
        stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        cluster.call(f"restart the rollout of Deployment {namespace}/{name}",
                     client.AppsV1Api(cluster.client).patch_namespaced_deployment, name, namespace,
                     {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}})
        done, state = wait_until(lambda: _rolled_out(cluster, namespace, name), time.monotonic() + timeout, 1.0,
                                 lambda state: state is None)
        if not done:
            raise ActivityFailed(f"Deployment {namespace}/{name} did not roll out within {timeout:g} s: {state}")
        now = placement_now(cluster, namespace, name)
    if not now["holds"]:
        raise ActivityFailed(
            f"Deployment {namespace}/{name} is still not spread as its topologySpreadConstraints want after "
            f"{restarts} rollouts ({misplacement(now)}): give them whenUnsatisfiable: DoNotSchedule and matchLabelKeys: "
            "[pod-template-hash], or bring the missing nodes back")
    return {"deployment": f"{namespace}/{name}", "before": before, "restarts": restarts, "after": now}


def placement_now(cluster: Connection, namespace: str, name: str) -> dict[str, Any]:
    """The :func:`placement` of Deployment ``namespace/name`` as the cluster has it now."""
    apps, core = client.AppsV1Api(cluster.client), client.CoreV1Api(cluster.client)
    serialize = cluster.client.sanitize_for_serialization
    deployment = serialize(cluster.call(f"read Deployment {namespace}/{name}", apps.read_namespaced_deployment,
                                        name, namespace))
    selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"].get("matchLabels", {}).items())
    pods = serialize(cluster.call(f"list the pods of Deployment {namespace}/{name}", core.list_namespaced_pod,
                                  namespace, label_selector=selector))["items"]
    nodes = serialize(cluster.call("list nodes", core.list_node))["items"]
    return placement(deployment, pods, nodes)


def _rolled_out(cluster: Connection, namespace: str, name: str) -> str | None:
    """None once every replica is updated and available and no other pod of it is left (not even
    a terminating one); else what is awaited."""
    apps, core = client.AppsV1Api(cluster.client), client.CoreV1Api(cluster.client)
    deployment = cluster.call(f"read Deployment {namespace}/{name}", apps.read_namespaced_deployment, name, namespace)
    status, want = deployment.status, deployment.spec.replicas or 0
    selector = ",".join(f"{k}={v}" for k, v in (deployment.spec.selector.match_labels or {}).items())
    pods = [pod for pod in cluster.call(f"list the pods of Deployment {namespace}/{name}", core.list_namespaced_pod,
                                        namespace, label_selector=selector).items
            if pod.status.phase not in ("Succeeded", "Failed")]  # ended pods stay listed, and count for nothing
    if (status.observed_generation or 0) < (deployment.metadata.generation or 0):
        return "its controller has not seen the restart yet"
    if (status.updated_replicas or 0) < want or (status.available_replicas or 0) < want or len(pods) > want:
        return (f"{status.updated_replicas or 0} of {want} replicas updated, {status.available_replicas or 0} "
                f"available, {len(pods)} pods")
    return None


def misplacement(placed: dict[str, Any]) -> str:
    """What breaks a placement, in words (empty when it holds)."""
    parts = [f"{c['topology_key']} {c['domains']} skew {c['skew']} > {c['max_skew']}"
             for c in placed["constraints"] if not c["holds"]]
    if placed["misplaced"]:
        parts.append(f"on nodes no new pod could go to: {', '.join(placed['misplaced'])}")
    return "; ".join(parts)
