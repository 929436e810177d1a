"""Is the cluster healthy? Checks that say what is wrong (None: all is well).

Probes log what they find; watches and the lab, which poll, only log changes. Each check makes
one attempt (urllib3's retries would multiply its timeout) and turns a failure into its answer.
"""

from urllib.parse import urlsplit

from chaoslib.types import Configuration, Secrets
from kubernetes.client import CoreV1Api, V1Node

from chaosali.cluster.api import ApiFailed, Connection, connect
from chaosali.core.args import seconds

__all__ = ["api_problem", "readiness_problem", "nodes_problem"]


def api_problem(
    timeout: float, configuration: Configuration, secrets: Secrets, address: str | None = None
) -> str | None:
    """Why the API server does not answer /readyz: the kubeconfig's, or the one at ``address`` (on the
    kubeconfig's port, with its credentials and TLS checks: one member behind a load balancer)."""
    timeout = seconds(timeout, "timeout")
    with connect(configuration, secrets, retries=0, timeout=timeout) as cluster:
        if address:
            settings = cluster.client.configuration
            port = urlsplit(settings.host).port or 443
            settings.host = f"https://{f'[{address}]' if ':' in address else address}:{port}"
        return readiness_problem(cluster)


def readiness_problem(cluster: Connection) -> str | None:
    """Why the API server of ``cluster`` does not answer /readyz (None: it does), in one attempt."""
    try:
        cluster.call("read /readyz", cluster.client.call_api, "/readyz", "GET", auth_settings=["BearerToken"],
                     _preload_content=False)
    except ApiFailed as error:
        return f"Kubernetes API at {cluster.host} is not ready: {error.reason}"
    return None


def nodes_problem(label_selector: str | None, configuration: Configuration, secrets: Secrets) -> str | None:
    with connect(configuration, secrets, retries=0) as cluster:
        try:
            nodes = cluster.call("list nodes", CoreV1Api(cluster.client).list_node, label_selector=label_selector or "")
        except ApiFailed as error:
            return str(error)
    if not nodes.items:
        return f"no node matches {label_selector!r}"
    not_ready = [n.metadata.name for n in nodes.items if not _ready(n)]
    return f"nodes not Ready: {', '.join(not_ready)}" if not_ready else None


def _ready(node: V1Node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
