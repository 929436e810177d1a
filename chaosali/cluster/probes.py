"""Kubernetes probes for steady-state hypotheses: read objects of any kind, API and node
readiness, and the hosts behind the cluster (its masters, nodes chosen by a query)."""

import logging
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosali.cluster import nodes, resources
from chaosali.cluster.health import api_problem, nodes_problem
from chaosali.cluster.watch import watch
from chaosali.core.args import address, boolean
from chaosali.core.errors import InvalidArgument
from chaosali.core.secrets import masked_secret

__all__ = ["get", "api_ready", "watch_api", "nodes_ready", "watch_nodes", "master_hosts", "hosts_of"]

logger = logging.getLogger("chaostoolkit")


def get(
    kind: str,
    name: str = None,
    namespace: str = None,
    label_selector: str = None,
    field_selector: str = None,
    all_namespaces: bool = False,
    api_version: str = None,
    show_secret_data: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Read objects of `kind` ("Pod", "pods", "deploy", or a custom kind, with
    `api_version` such as "example.com/v1" when ambiguous), as
    `kubectl get -o json` prints them: the object named `name`, or a List
    (`items`) of those matching `label_selector` (e.g. "app=web,tier!=db")
    and `field_selector` (e.g. "status.phase=Running") in `namespace`
    (default "default") or in all namespaces with `all_namespaces`.
    A missing named object is an error (the probe fails).
    Secrets come with their `data` and `stringData` masked ("***"): the
    output lands in the journal. `show_secret_data` returns them as they are.
    """
    if name and (label_selector or field_selector):
        raise InvalidArgument(f"get {kind}: give either name or label_selector/field_selector, not both")
    show_secret_data = boolean(show_secret_data, "show_secret_data")
    with resources.connect(configuration, secrets) as dyn:
        where = resources.locate(dyn, kind, api_version, namespace, name, all_namespaces)
        found = resources.get(dyn, where, label_selector, field_selector)
    if show_secret_data or where.resource.kind != "Secret":
        return found
    if name:
        return masked_secret(found)
    return {**found, "items": [masked_secret(item) for item in found["items"]]}


def api_ready(timeout: float = 3, configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """
    Tell whether the Kubernetes API server answers /readyz with success
    within `timeout` seconds. An API that does not answer, or answers that it
    is not ready, gives false (the reason is logged), so a steady-state
    tolerance can simply be true.
    """
    problem = api_problem(timeout, configuration, secrets)
    if problem:
        logger.warning("%s", problem)
    return problem is None


def watch_api(
    seconds: float = 60,
    interval: float = 1,
    stop: str = "never",
    timeout: float = 1,
    apiserver: dict = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Watch the API server's /readyz every `interval` seconds for up to
    `seconds`, through a fault: when it stopped answering (`down_at`), for how
    long (`down_seconds`), when it answered again (`back_at`). `stop` ends the
    watch early: "down" once it fails, "back" once it is back after failing,
    "up" once it answers (at once if it does).
    `apiserver` watches one API server rather than the kubeconfig's endpoint
    (a load balancer): its address, or a host query that chooses one host,
    e.g. {"masters": ["etcd"], "count": 1, "seed": 7} (the query a fault
    was given chooses the same host). The output names it as `apiserver`.
    """
    address = _one_address(apiserver, configuration, secrets)
    watched = watch(lambda: api_problem(timeout, configuration, secrets, address) is None, seconds, interval, stop,
                    f"the API server at {address}" if address else "the API")
    return {**watched, "apiserver": address} if address else watched


def _one_address(apiserver: Any, configuration: Configuration, secrets: Secrets) -> str | None:
    if apiserver is None:
        return None
    if isinstance(apiserver, dict):
        hosts = nodes.select_hosts(apiserver, configuration, secrets)["hosts"]
        if len(hosts) != 1:
            raise InvalidArgument(f"apiserver query {apiserver!r} chose {len(hosts)} hosts: add \"count\": 1")
        return address(hosts[0]["address"], "apiserver")
    return address(apiserver, "apiserver")


def nodes_ready(
    label_selector: str = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """
    Tell whether every node matching `label_selector` (all nodes by default)
    reports the Ready condition True; false as well when no node matches or
    the API does not answer (the reason is logged).
    """
    problem = nodes_problem(label_selector, configuration, secrets)
    if problem:
        logger.warning("%s", problem)
    return problem is None


def watch_nodes(
    label_selector: str = None,
    seconds: float = 60,
    interval: float = 1,
    stop: str = "never",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Watch whether every node matching `label_selector` is Ready, every
    `interval` seconds for up to `seconds`: when one went NotReady
    (`down_at`), for how long, when all were Ready again (`back_at`). `stop`:
    "down" ends the watch once a node is not Ready, "back" once all are again,
    "up" once all are Ready (at once if they are: waiting out a recovery).
    """
    what = f"nodes {label_selector!r}" if label_selector else "the nodes"
    return watch(lambda: nodes_problem(label_selector, configuration, secrets) is None, seconds, interval, stop, what)


def master_hosts(components: list = None, configuration: Configuration = None, secrets: Secrets = None) -> list:
    """
    Find the machines of the cluster's master components, knowing only the
    kubeconfig: nodes labelled node-role.kubernetes.io/control-plane (or
    master), nodes running kube-system pods labelled component=kube-apiserver,
    etcd, kube-scheduler or kube-controller-manager (as kubeadm labels them),
    and the addresses of the default/kubernetes endpoints.
    With `components` (e.g. ["kube-apiserver", "etcd"]; "apiserver",
    "scheduler" and "controller-manager" are taken too), only the hosts that
    run one of them. Returns a list of {"node", "addresses" (by type),
    "components", "ssh_address"}; ssh_address is the node's InternalIP, or
    its entry in configuration node_ssh_addresses. Fails when no master is
    visible, as in a managed cluster (EKS, GKE, AKS, ACK...).
    """
    return nodes.master_hosts(configuration, secrets, components)


def hosts_of(query: dict, configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """
    Tell which hosts a host query chooses, as a host action would (its
    `targets`): {"masters": ["kube-apiserver"]} (the hosts of master
    components; [] for all), {"nodes": "label selector"} or {"pods":
    {"namespace": ..., "label_selector": ...}} (the nodes running those
    pods), optionally sampled with "count" or "percent" (of the hosts found)
    and "seed". Returns {"hosts": [{"name", "address"}], "why": text}; no
    matching host is an empty list, not a failure.
    """
    return nodes.select_hosts(query, configuration, secrets, empty_ok=True)
