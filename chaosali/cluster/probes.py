"""Kubernetes probes for steady-state hypotheses: read objects of any kind, API readiness."""

import logging

import urllib3
from chaoslib.types import Configuration, Secrets
from kubernetes.client import CoreV1Api
from kubernetes.client.rest import ApiException

from chaosali.cluster import resources
from chaosali.cluster.client import new_api_client
from chaosali.cluster.watch import watch
from chaosali.errors import InvalidArgument

__all__ = ["get", "api_ready", "watch_api", "nodes_ready", "watch_nodes"]

logger = logging.getLogger("chaostoolkit")


def get(
    kind: str,
    name: str = None,
    namespace: str = None,
    label_selector: str = None,
    field_selector: str = None,
    all_namespaces: bool = False,
    api_version: str = None,
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
    """
    if name and (label_selector or field_selector):
        raise InvalidArgument(f"get {kind}: give either name or label_selector/field_selector, not both")
    with resources.connect(configuration, secrets) as dyn:
        where = resources.locate(dyn, kind, api_version, namespace, name, all_namespaces)
        return resources.get(dyn, where, label_selector, field_selector)


def api_ready(timeout: float = 3, configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """
    Tell whether the Kubernetes API server answers /readyz with success
    within `timeout` seconds. An API that does not answer, or answers that it
    is not ready, gives false (the reason is logged), so a steady-state
    tolerance can simply be true.
    """
    problem = _api_problem(timeout, configuration, secrets)
    if problem:
        logger.warning("%s", problem)
    return problem is None


def watch_api(
    seconds: float = 60,
    interval: float = 1,
    stop: str = "never",
    timeout: float = 1,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Watch the API server's /readyz every `interval` seconds for up to
    `seconds`, through a fault: when it stopped answering (`down_at`), for how
    long (`down_seconds`), when it answered again (`back_at`). `stop` ends the
    watch early: "down" once it fails, "back" once it is back after failing.
    """
    return watch(lambda: _api_problem(timeout, configuration, secrets) is None, seconds, interval, stop, "the API")


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
    problem = _nodes_problem(label_selector, configuration, secrets)
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
    "down" ends the watch once a node is not Ready, "back" once all are again.
    """
    what = f"nodes {label_selector!r}" if label_selector else "the nodes"
    return watch(lambda: _nodes_problem(label_selector, configuration, secrets) is None, seconds, interval, stop, what)


# The checks say what is wrong (None: all is well); probes log it, watches only log changes.


def _api_problem(timeout: float, configuration: Configuration, secrets: Secrets) -> str | None:
    timeout = resources.seconds(timeout, "timeout")
    # one attempt: urllib3's default retries would multiply the timeout by four
    with new_api_client(configuration, secrets, retries=0) as api:
        host = api.configuration.host
        try:
            api.call_api(
                "/readyz", "GET", auth_settings=["BearerToken"], _preload_content=False, _request_timeout=timeout
            )
        except (ApiException, urllib3.exceptions.HTTPError) as error:
            return f"Kubernetes API at {host} is not ready: {resources.explain(error, host)}"
    return None


def _nodes_problem(label_selector: str | None, configuration: Configuration, secrets: Secrets) -> str | None:
    with new_api_client(configuration, secrets, retries=0) as api:
        try:
            nodes = CoreV1Api(api).list_node(label_selector=label_selector or "", _request_timeout=5).items
        except (ApiException, urllib3.exceptions.HTTPError) as error:
            return f"cannot list nodes: {resources.explain(error, api.configuration.host)}"
    if not nodes:
        return f"no node matches {label_selector!r}"
    not_ready = [n.metadata.name for n in nodes if not _ready(n)]
    return f"nodes not Ready: {', '.join(not_ready)}" if not_ready else None


def _ready(node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
