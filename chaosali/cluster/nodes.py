"""From a kubeconfig to hosts: the masters of a cluster, nodes by label, nodes running given pods.

Every lookup uses selectors or names, so the number of API requests does not grow with the
cluster (no listing of all pods or all nodes). A node maps to its SSH address through its
InternalIP, or through configuration ``node_ssh_addresses`` (``{"node-name": "address"}``).
"""

from __future__ import annotations

import logging
import random
from typing import Any

import urllib3
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from kubernetes import client
from kubernetes.client.rest import ApiException

from chaosali.cluster.client import new_api_client
from chaosali.config import number
from chaosali.errors import InvalidArgument

__all__ = ["MASTER_COMPONENTS", "master_hosts", "select_hosts"]

logger = logging.getLogger("chaostoolkit")

MASTER_COMPONENTS = ["kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager"]
_ALIASES = {"apiserver": "kube-apiserver", "scheduler": "kube-scheduler", "controller-manager": "kube-controller-manager"}
_CONTROL_PLANE_LABELS = ["node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"]


def master_hosts(configuration: Configuration = None, secrets: Secrets = None) -> list[dict[str, Any]]:
    """The hosts of the master components, found from control-plane node labels, kube-system
    component pods (as kubeadm labels them) and the ``default/kubernetes`` endpoints."""
    ssh_map = (configuration or {}).get("node_ssh_addresses") or {}
    timeout = _timeout(configuration)
    with new_api_client(configuration, secrets, retries=1) as api:
        core = client.CoreV1Api(api)
        nodes: dict[str, client.V1Node] = {}
        for label in _CONTROL_PLANE_LABELS:
            nodes.update({n.metadata.name: n for n in _call(lambda: core.list_node(label_selector=label, _request_timeout=timeout).items)})
        components: dict[str, set[str]] = {name: set() for name in nodes}
        pods = _call(lambda: core.list_namespaced_pod(
            "kube-system", label_selector=f"component in ({','.join(MASTER_COMPONENTS)})", _request_timeout=timeout
        ).items)
        for pod in pods:
            if pod.spec.node_name:
                components.setdefault(pod.spec.node_name, set()).add(pod.metadata.labels["component"])
        for name in set(components) - set(nodes):  # component pods on nodes without the role label
            nodes[name] = _call(lambda: core.read_node(name, _request_timeout=timeout))
        apiserver_ips = _apiserver_ips(core, timeout)

    if not nodes:
        seen = f" (the API is served from {', '.join(sorted(apiserver_ips))}, addresses that are no node)" if apiserver_ips else ""
        raise ActivityFailed(
            "the masters of this cluster are not visible: no node is labelled "
            f"{' or '.join(_CONTROL_PLANE_LABELS)} and kube-system has no pod labelled component=<master "
            f"component>{seen}. That is how a managed cluster (EKS, GKE, AKS, ACK...) looks: its control "
            "plane cannot be reached as hosts; aim host faults at nodes instead"
        )
    hosts = []
    for name in sorted(nodes):
        addresses = {a.type: a.address for a in nodes[name].status.addresses or []}
        found = set(components.get(name, set()))
        if apiserver_ips & set(addresses.values()):
            found.add("kube-apiserver")
        hosts.append({
            "node": name,
            "addresses": addresses,
            "components": sorted(found, key=MASTER_COMPONENTS.index),
            "ssh_address": _ssh_address(name, addresses, ssh_map),
        })
    return hosts


def select_hosts(query: dict, configuration: Configuration = None, secrets: Secrets = None) -> dict[str, Any]:
    """Resolve a host query to hosts: ``{"masters": [components]}``, ``{"nodes": "label selector"}``
    or ``{"pods": {"namespace", "label_selector"}}``, optionally sampled by ``count`` or
    ``percent`` with a ``seed``. Returns ``{"hosts": [{"node", "address"}], "why": str}``."""
    kinds = [key for key in ("masters", "nodes", "pods") if key in query]
    unknown = set(query) - {"masters", "nodes", "pods", "count", "percent", "seed"}
    if len(kinds) != 1 or unknown:
        raise InvalidArgument(
            f"host query {query!r}: give exactly one of 'masters' (components), 'nodes' (a label selector) "
            "or 'pods' ({'namespace', 'label_selector'}), optionally with 'count' or 'percent' and 'seed'"
        )
    ssh_map = (configuration or {}).get("node_ssh_addresses") or {}
    if "masters" in query:
        wanted = _components(query["masters"])
        found = [h for h in master_hosts(configuration, secrets) if set(h["components"]) & wanted]
        candidates = {h["node"]: h["ssh_address"] for h in found}
        why = f"hosts of master components {', '.join(sorted(wanted))}"
    elif "nodes" in query:
        selector = _selector(query["nodes"])
        with new_api_client(configuration, secrets, retries=1) as api:
            nodes = _call(lambda: client.CoreV1Api(api).list_node(
                label_selector=selector, _request_timeout=_timeout(configuration)).items)
        candidates = {n.metadata.name: _node_address(n, ssh_map) for n in nodes}
        why = f"nodes matching {selector!r}"
    else:
        candidates, why = _nodes_of_pods(query["pods"], ssh_map, configuration, secrets)
    if not candidates:
        raise ActivityFailed(f"no host to act on: no {why}; nothing was injected")
    chosen = _sample(sorted(candidates), query)
    hosts = [{"name": name, "address": candidates[name]} for name in chosen]
    reason = f"{why}: {len(chosen)} of {len(candidates)}" + (f" (seed {query['seed']})" if "seed" in query else "")
    logger.info("chaosali: chose %s: %s", ", ".join(chosen), reason)
    return {"hosts": hosts, "why": reason}


def _nodes_of_pods(spec: Any, ssh_map: dict, configuration: Configuration, secrets: Secrets) -> tuple[dict, str]:
    if not isinstance(spec, dict) or not spec.get("namespace") or not spec.get("label_selector"):
        raise InvalidArgument("host query 'pods' needs {'namespace': ..., 'label_selector': ...}")
    selector = _selector(spec["label_selector"])
    timeout = _timeout(configuration)
    with new_api_client(configuration, secrets, retries=1) as api:
        core = client.CoreV1Api(api)
        pods = _call(lambda: core.list_namespaced_pod(
            spec["namespace"], label_selector=selector, _request_timeout=timeout).items)
        names = sorted({p.spec.node_name for p in pods if p.spec.node_name})
        nodes = [_call(lambda: core.read_node(name, _request_timeout=timeout)) for name in names]
    why = f"nodes running pods {selector!r} in namespace {spec['namespace']}"
    return {n.metadata.name: _node_address(n, ssh_map) for n in nodes}, why


def _sample(names: list[str], query: dict) -> list[str]:
    if "count" in query and "percent" in query:
        raise InvalidArgument("host query: give 'count' or 'percent', not both")
    if "count" in query:
        size = number(query["count"], "host query: count", 1, len(names), int)
    elif "percent" in query:
        percent = number(query["percent"], "host query: percent", 0, 100)
        if percent == 0:
            raise InvalidArgument("host query: percent 0 selects no host; give a percent above 0")
        size = max(1, round(len(names) * percent / 100))
    else:
        return names
    return sorted(random.Random(query.get("seed")).sample(names, size))


def _components(components: Any) -> set[str]:
    if isinstance(components, str):
        components = [components]
    wanted = {_ALIASES.get(c, c) for c in components or MASTER_COMPONENTS}
    unknown = wanted - set(MASTER_COMPONENTS)
    if unknown:
        raise InvalidArgument(f"unknown master component(s) {sorted(unknown)}: use {', '.join(MASTER_COMPONENTS)}")
    return wanted


def _selector(selector: Any) -> str:
    if isinstance(selector, dict):
        selector = ",".join(f"{k}={v}" if v != "" else k for k, v in selector.items())
    if not isinstance(selector, str) or not selector.strip():
        raise InvalidArgument(f"label selector {selector!r} must be a non-empty string such as 'app=web'")
    return selector


def _apiserver_ips(core: client.CoreV1Api, timeout: float) -> set[str]:
    try:
        endpoints = core.read_namespaced_endpoints("kubernetes", "default", _request_timeout=timeout)
    except ApiException:
        return set()
    return {a.ip for subset in endpoints.subsets or [] for a in subset.addresses or []}


def _node_address(node: client.V1Node, ssh_map: dict) -> str:
    addresses = {a.type: a.address for a in node.status.addresses or []}
    return _ssh_address(node.metadata.name, addresses, ssh_map)


def _ssh_address(name: str, addresses: dict[str, str], ssh_map: dict) -> str:
    address = ssh_map.get(name) or addresses.get("InternalIP") or addresses.get("ExternalIP")
    if not address:
        raise ActivityFailed(
            f"node {name} has no InternalIP: map it to an SSH address in configuration node_ssh_addresses"
        )
    return address


def _timeout(configuration: Configuration) -> float:
    return float((configuration or {}).get("kubernetes_request_timeout", 10))


def _call(request):
    """Run an API request; turn its failure into an error a drill's author can act on."""
    try:
        return request()
    except ApiException as error:
        raise ActivityFailed(f"Kubernetes API refused the lookup: {error.status} {error.reason}") from None
    except (OSError, urllib3.exceptions.HTTPError) as error:  # an API that does not answer
        raise ActivityFailed(f"Kubernetes API does not answer the lookup: {error}") from None
