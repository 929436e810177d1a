"""Is the cluster healthy? Checks that say what is wrong (None: all is well).

Probes log what they find; watches and the lab, which poll, only log changes.
"""

import urllib3
from chaoslib.types import Configuration, Secrets
from kubernetes.client import CoreV1Api, V1Node
from kubernetes.client.rest import ApiException

from chaosali.cluster import resources
from chaosali.cluster.client import new_api_client

__all__ = ["api_problem", "nodes_problem"]


def api_problem(timeout: float, configuration: Configuration, secrets: Secrets) -> str | None:
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


def nodes_problem(label_selector: str | None, configuration: Configuration, secrets: Secrets) -> str | None:
    with new_api_client(configuration, secrets, retries=0) as api:
        try:
            nodes = CoreV1Api(api).list_node(label_selector=label_selector or "", _request_timeout=5).items
        except (ApiException, urllib3.exceptions.HTTPError) as error:
            return f"cannot list nodes: {resources.explain(error, api.configuration.host)}"
    if not nodes:
        return f"no node matches {label_selector!r}"
    not_ready = [n.metadata.name for n in nodes if not _ready(n)]
    return f"nodes not Ready: {', '.join(not_ready)}" if not_ready else None


def _ready(node: V1Node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
