"""Workloads and their pods, as drills need them (private): whether an object exists, a namespace
made sure of, and waiting until a workload's pods have rolled out a change.

Workloads are Deployments, StatefulSets and DaemonSets as the API lists them (``kind`` set, since
list items come without it).
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from chaoslib.exceptions import ActivityFailed
from kubernetes.dynamic import DynamicClient

from chaosali.cluster import resources
from chaosali.core.waiting import wait_until

__all__ = [
    "WORKLOAD_API",
    "key",
    "locate",
    "existing",
    "ensure_namespace",
    "await_pods",
    "rollout_state",
    "rolls",
    "phase",
    "replicas",
    "selector_text",
]

logger = logging.getLogger("chaostoolkit")

WORKLOAD_API = "apps/v1"
# a selector's matchExpressions as label selector text
_OPERATORS = {
    "In": "{key} in ({values})",
    "NotIn": "{key} notin ({values})",
    "Exists": "{key}",
    "DoesNotExist": "!{key}",
}


def key(workload: dict) -> tuple[str, str, str]:
    """A workload's kind, namespace and name."""
    return workload["kind"], workload["metadata"]["namespace"], workload["metadata"]["name"]


def locate(dyn: DynamicClient, workload: dict) -> resources.Target:
    kind, namespace, name = key(workload)
    return resources.locate(dyn, kind, WORKLOAD_API, namespace, name)


def existing(dyn: DynamicClient, document: dict) -> dict | None:
    """The object a document names, if it exists (listed by name: a missing one is no error)."""
    where = resources.target(dyn, document, None)
    collection = resources.Target(where.resource, where.namespace, None)
    items = resources.get(dyn, collection, field_selector=f"metadata.name={where.name}")["items"]
    return items[0] if items else None


def ensure_namespace(dyn: DynamicClient, document: dict) -> bool:
    """Create the Namespace ``document`` describes if it is missing; True if created. A namespace
    being deleted is refused: whatever is put in it now would go with it."""
    name = document["metadata"]["name"]
    found = existing(dyn, document)
    if found is None:
        resources.create(dyn, [document], None, exist_ok=True)
        return True
    if (found.get("status") or {}).get("phase") == "Terminating":
        raise ActivityFailed(f"namespace {name!r} is being deleted: wait until it is gone, or use another namespace")
    return False


def await_pods(
    dyn: DynamicClient, workloads: list[dict], updated: Callable[[dict, dict], bool], timeout: float
) -> dict[tuple, bool]:
    """Wait until every live pod of each workload is ``updated`` (``updated(pod, workload)``) and
    as many as it wants run.

    Checked on the pods rather than on each kind's rollout status: the pods are what a drill acts
    on. Returns, per workload :func:`key`, True, or False for one whose pods will not roll by
    themselves."""
    rolled: dict[tuple, bool] = {}
    pending = []
    for workload in workloads:
        if rolls(workload):
            pending.append(workload)
        else:
            rolled[key(workload)] = False
            logger.warning(
                "chaosali: %s %s/%s does not roll its pods out by itself (paused, OnDelete or partitioned): "
                "only pods created from now on carry the change", *key(workload)
            )

    def awaited() -> dict[tuple, str]:
        nonlocal pending
        states = {key(w): rollout_state(dyn, w, updated) for w in pending}
        pending = [w for w in pending if states[key(w)] is not None]
        return {key(w): str(states[key(w)]) for w in pending}

    rolled_out, late = wait_until(awaited, time.monotonic() + timeout, 1.0, lambda late: not late)
    if not rolled_out:
        told = "; ".join(f"{kind} {ns}/{name}: {state}" for (kind, ns, name), state in late.items())
        raise ActivityFailed(f"pods not rolled out after {timeout:g} s: {told}")
    rolled.update({key(w): True for w in workloads if key(w) not in rolled})
    return rolled


def rollout_state(dyn: DynamicClient, workload: dict, updated: Callable[[dict, dict], bool]) -> str | None:
    """None once the workload's pods are all ``updated`` and enough of them run, else what is
    still awaited."""
    fresh = resources.get(dyn, locate(dyn, workload))
    status = fresh.get("status") or {}
    if status.get("observedGeneration", 0) < fresh["metadata"].get("generation", 0):
        return "its controller has not seen the change yet"
    desired, _ = replicas(workload["kind"], fresh)
    pods = resources.locate(dyn, "Pod", "v1", fresh["metadata"]["namespace"])
    live = [
        pod
        for pod in resources.get(dyn, pods, selector_text(fresh["spec"]["selector"]))["items"]
        if not pod["metadata"].get("deletionTimestamp") and phase(pod) not in ("Succeeded", "Failed")
    ]
    stale = [pod for pod in live if not updated(pod, workload)]
    running = [pod for pod in live if pod not in stale and phase(pod) == "Running"]
    if stale or len(running) < desired:
        return f"{len(running)} of {desired} pods updated and running, {len(stale)} still to replace"
    return None


def replicas(kind: str, workload: dict) -> tuple[int, int]:
    """A workload's desired and ready replicas, from its JSON (camelCase, as the API gives it): a
    DaemonSet's are the nodes it should run on and those where it is ready; the others' desired
    is ``spec.replicas``, 1 when unset (the API's default), and 0 only when scaled to 0."""
    spec, status = workload.get("spec") or {}, workload.get("status") or {}
    if kind == "DaemonSet":
        return int(status.get("desiredNumberScheduled") or 0), int(status.get("numberReady") or 0)
    desired = spec.get("replicas")
    return 1 if desired is None else int(desired), int(status.get("readyReplicas") or 0)


def rolls(workload: dict) -> bool:
    """Whether a change of the pod template rolls the workload's pods out by itself."""
    spec = workload.get("spec") or {}
    if workload["kind"] == "Deployment":
        return not spec.get("paused")
    strategy = spec.get("updateStrategy") or {}
    partition = (strategy.get("rollingUpdate") or {}).get("partition") or 0
    return strategy.get("type", "RollingUpdate") != "OnDelete" and not partition


def phase(pod: dict) -> str | None:
    return (pod.get("status") or {}).get("phase")


def selector_text(selector: dict) -> str:
    """A workload's spec.selector as label selector text."""
    parts = [f"{label}={value}" for label, value in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        form = _OPERATORS[expression["operator"]]
        parts.append(form.format(key=expression["key"], values=",".join(expression.get("values") or [])))
    return ",".join(parts)
