"""From a kubeconfig to hosts: the masters of a cluster, nodes by label, nodes running given pods.

Every lookup uses selectors or names, so the number of API requests does not grow with the
cluster (no listing of all pods or all nodes). A node maps to its SSH address through its
InternalIP, or through configuration ``node_ssh_addresses`` (``{"node-name": "address"}``).

A node's addresses are the cluster API's data, which the drill does not trust: an address from the
API must be an IP address, and loopback or link-local ones (which would aim SSH, and its
credentials, at the controller itself or its link) are refused unless configuration
``node_addresses_allow_local`` is true. Addresses given by ``node_ssh_addresses`` are the
configuration's and are taken as they are.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import random
from dataclasses import dataclass
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from kubernetes import client

from chaosali.cluster.api import ApiFailed, Connection, connect
from chaosali.core.args import address as read_address, flag, label_selector, percent as read_percent, whole
from chaosali.core.errors import InvalidArgument

__all__ = ["MASTER_COMPONENTS", "RUNNER_NODE_ENV", "master_hosts", "select_hosts"]

logger = logging.getLogger("chaostoolkit")

MASTER_COMPONENTS = ["kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager"]
_ALIASES = {"apiserver": "kube-apiserver", "scheduler": "kube-scheduler", "controller-manager": "kube-controller-manager"}
_CONTROL_PLANE_LABELS = ["node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"]
#: the node a drill's own pod runs on (set by ``chaosali schedule``): no host query chooses it
RUNNER_NODE_ENV = "CHAOSALI_RUNNER_NODE"


def master_hosts(
    configuration: Configuration = None, secrets: Secrets = None, components: Any = None
) -> list[dict[str, Any]]:
    """The hosts of the master components, found from control-plane node labels, kube-system
    component pods (as kubeadm labels them) and the ``default/kubernetes`` endpoints; with
    ``components``, only the hosts that run one of them."""
    wanted = None if components is None else _components(components)
    book = _address_book(configuration)
    with connect(configuration, secrets) as cluster:
        core = client.CoreV1Api(cluster.client)
        nodes: dict[str, client.V1Node] = {}
        for label in _CONTROL_PLANE_LABELS:
            listed = cluster.call(f"list the nodes labelled {label}", core.list_node, label_selector=label).items
            nodes.update({n.metadata.name: n for n in listed})
        components_of: dict[str, set[str]] = {name: set() for name in nodes}
        selector = f"component in ({','.join(MASTER_COMPONENTS)})"
        pods = cluster.call("list the master pods", core.list_namespaced_pod, "kube-system", label_selector=selector)
        for pod in pods.items:
            if pod.spec.node_name:
                components_of.setdefault(pod.spec.node_name, set()).add(pod.metadata.labels["component"])
        for name in set(components_of) - set(nodes):  # component pods on nodes without the role label
            nodes[name] = cluster.call(f"read node {name}", core.read_node, name)
        apiserver_ips = _apiserver_ips(cluster, core)

    if not nodes:
        served = ", ".join(sorted(apiserver_ips))
        seen = f" (the API is served from {served}, addresses that are no node)" if apiserver_ips else ""
        raise ActivityFailed(
            "the masters of this cluster are not visible: no node is labelled "
            f"{' or '.join(_CONTROL_PLANE_LABELS)} and kube-system has no pod labelled component=<master "
            f"component>{seen}. That is how a managed cluster (EKS, GKE, AKS, ACK...) looks: its control "
            "plane cannot be reached as hosts; aim host faults at nodes instead"
        )
    hosts = []
    for name in sorted(nodes):
        addresses = {a.type: a.address for a in nodes[name].status.addresses or []}
        found = set(components_of.get(name, set()))
        if apiserver_ips & set(addresses.values()):
            found.add("kube-apiserver")
        if wanted is None or found & wanted:
            hosts.append({
                "node": name,
                "addresses": addresses,
                "components": sorted(found, key=MASTER_COMPONENTS.index),
                "ssh_address": _ssh_address(name, addresses, book),
            })
    return hosts


def select_hosts(
    query: dict, configuration: Configuration = None, secrets: Secrets = None, *, empty_ok: bool = False
) -> dict[str, Any]:
    """Resolve a host query to hosts: ``{"masters": [components]}``, ``{"nodes": "label selector"}``
    or ``{"pods": {"namespace", "label_selector"}}``, optionally sampled by ``count`` or
    ``percent`` with a ``seed``. Returns ``{"hosts": [{"name", "address"}], "why": str}``; no
    host found is an error (nothing to act on) unless ``empty_ok``."""
    kinds = [key for key in ("masters", "nodes", "pods") if key in query] if isinstance(query, dict) else []
    unknown = set(query) - {"masters", "nodes", "pods", "count", "percent", "seed"} if kinds else set()
    if len(kinds) != 1 or unknown:
        raise InvalidArgument(
            f"host query {query!r}: give exactly one of 'masters' (components), 'nodes' (a label selector) "
            "or 'pods' ({'namespace', 'label_selector'}), optionally with 'count' or 'percent' and 'seed'"
        )
    book = _address_book(configuration)
    if "masters" in query:
        found = master_hosts(configuration, secrets, query["masters"] or [])
        candidates = {h["node"]: h["ssh_address"] for h in found}
        why = f"hosts of master components {', '.join(sorted(_components(query['masters'])))}"
    elif "nodes" in query:
        selector = label_selector(query["nodes"])
        with connect(configuration, secrets) as cluster:
            listing = client.CoreV1Api(cluster.client).list_node
            nodes = cluster.call(f"list the nodes matching {selector!r}", listing, label_selector=selector).items
        candidates = {n.metadata.name: _node_address(n, book) for n in nodes}
        why = f"nodes matching {selector!r}"
    else:
        candidates, why = _nodes_of_pods(query["pods"], book, configuration, secrets)
    runner = os.environ.get(RUNNER_NODE_ENV)
    if runner in candidates:  # a drill run from a pod (chaosali schedule) never hits its own node
        del candidates[runner]
        why += f", but {runner}, where this drill runs"
    if not candidates:
        if empty_ok:
            return {"hosts": [], "why": f"no {why}"}
        raise ActivityFailed(f"no host to act on: no {why}; nothing was injected")
    chosen = _sample(sorted(candidates), query)
    hosts = [{"name": name, "address": candidates[name]} for name in chosen]
    reason = f"{why}: {len(chosen)} of {len(candidates)}" + (f" (seed {query['seed']})" if "seed" in query else "")
    logger.info("chaosali: chose %s: %s", ", ".join(chosen), reason)
    return {"hosts": hosts, "why": reason}


def _nodes_of_pods(spec: Any, book: _AddressBook, configuration: Configuration, secrets: Secrets) -> tuple[dict, str]:
    if not isinstance(spec, dict) or not spec.get("namespace") or not spec.get("label_selector"):
        raise InvalidArgument("host query 'pods' needs {'namespace': ..., 'label_selector': ...}")
    selector = label_selector(spec["label_selector"])
    why = f"nodes running pods {selector!r} in namespace {spec['namespace']}"
    with connect(configuration, secrets) as cluster:
        core = client.CoreV1Api(cluster.client)
        pods = cluster.call(
            f"list the pods {selector!r} in namespace {spec['namespace']}",
            core.list_namespaced_pod, spec["namespace"], label_selector=selector,
        ).items
        names = sorted({p.spec.node_name for p in pods if p.spec.node_name})
        nodes = [cluster.call(f"read node {name}", core.read_node, name) for name in names]
    return {n.metadata.name: _node_address(n, book) for n in nodes}, why


def _sample(names: list[str], query: dict) -> list[str]:
    if "count" in query and "percent" in query:
        raise InvalidArgument("host query: give 'count' or 'percent', not both")
    if "count" in query:
        size = whole(query["count"], "host query: count", 1, len(names))
    elif "percent" in query:
        percent = read_percent(query["percent"], "host query: percent", zero=True)
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


def _apiserver_ips(cluster: Connection, core: client.CoreV1Api) -> set[str]:
    try:
        endpoints = cluster.call("read the API's endpoints", core.read_namespaced_endpoints, "kubernetes", "default")
    except ApiFailed as error:
        if error.status is None:  # no answer: the lookup fails; a refusal (RBAC) only loses this hint
            raise
        return set()
    return {a.ip for subset in endpoints.subsets or [] for a in subset.addresses or []}


def _node_address(node: client.V1Node, book: _AddressBook) -> str:
    addresses = {a.type: a.address for a in node.status.addresses or []}
    return _ssh_address(node.metadata.name, addresses, book)


@dataclass(frozen=True)
class _AddressBook:
    """How nodes are reached: configuration's own addresses first, then the API's, checked."""

    configured: dict[str, str]
    allow_local: bool


def _address_book(configuration: Configuration) -> _AddressBook:
    return _AddressBook((configuration or {}).get("node_ssh_addresses") or {},
                        flag(configuration, "node_addresses_allow_local") or False)


def _ssh_address(name: str, addresses: dict[str, str], book: _AddressBook) -> str:
    if book.configured.get(name):
        return book.configured[name]
    address = addresses.get("InternalIP") or addresses.get("ExternalIP")
    if not address:
        raise ActivityFailed(
            f"node {name} has no InternalIP: map it to an SSH address in configuration node_ssh_addresses"
        )
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ActivityFailed(
            f"node {name}: the cluster API gives it the address {address!r}, which is not an IP address; "
            "map the node to its SSH address in configuration node_ssh_addresses"
        ) from None
    try:  # ipaddress takes any scope ("%$(...)"): the address must be one a command may carry
        address = read_address(address, f"node {name}: the cluster API's address")
    except InvalidArgument as error:
        raise ActivityFailed(f"{error}; map the node to its SSH address in configuration node_ssh_addresses") from None
    if (ip.is_loopback or ip.is_link_local or ip.is_unspecified) and not book.allow_local:
        raise ActivityFailed(
            f"node {name}: the cluster API gives it the address {address}, a loopback or link-local one, where "
            "SSH would reach this machine or its link rather than the node; map the node in configuration "
            "node_ssh_addresses, or set node_addresses_allow_local to true if that is really where it is"
        )
    return address
