"""What the benchmarks on a filled lab cluster share: the API meter, and the bulk nodes and pods.

Not a benchmark itself; ``bench/scale.py`` and ``bench/impact.py`` import it (run from the
repository, Python puts ``bench/`` on the path).
"""

from __future__ import annotations

import http.client
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

from kubernetes import client
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from chaosali.cluster.api import new_api_client
from chaosali.lab.cluster import Cluster
from chaosali.lab.hosts import Lab

__all__ = ["Meter", "NAMESPACE", "fill", "lab_cluster", "node_names", "pod_body"]

NAMESPACE = "scale"

# A fake node has no kubelet: the node controller finds it NotReady after the lab's node grace.
# Without this toleration its pods would be evicted by the taint manager minutes later; without the
# label the 1,000 silent nodes put the zone in partial or full disruption, and the controller then
# taints and untaints them by the hundred. Either would land in the middle of a measurement.
_EXCLUDE_DISRUPTION = "node.kubernetes.io/exclude-disruption"
_TOLERATE_UNREADY = [
    {"key": f"node.kubernetes.io/{taint}", "operator": "Exists", "effect": "NoExecute"}
    for taint in ("unreachable", "not-ready")
]


class Meter:
    """API requests, connections and response bytes, counted on the HTTP connection itself.

    Bytes are everything read from the connection for each response: status line, headers,
    chunked framing and body, as TLS hands them over (TLS records and handshakes excluded). They
    are counted as they are read, so streamed responses (``_preload_content=False``: watches,
    raw lists) count too, and so do error responses. Requests are HTTP requests sent, retries
    included; connections are those opened (each one a TLS handshake). ``by`` splits requests and
    bytes by method, path and kind: ``watch``, or ``page`` for a list's pages after its first.

    Two ways to meter: ``with Meter() as meter:`` counts every client of the process while the
    block runs (new connections only); ``meter.attach(api)`` counts one ApiClient, whatever the
    other clients of the process do.
    """

    def __init__(self) -> None:
        self.requests = self.connections = self.bytes = 0
        self.by: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # "GET /api/v1/nodes" -> [requests, bytes]
        self._lock = threading.Lock()
        self._http, self._https = _metered(HTTPConnection, self), _metered(HTTPSConnection, self)
        self._saved: tuple[type, type] | None = None

    def add(self, requests: int = 0, connections: int = 0, bytes: int = 0, key: str | None = None) -> None:
        with self._lock:
            self.requests += requests
            self.connections += connections
            self.bytes += bytes
            if key:
                self.by[key][0] += requests
                self.by[key][1] += bytes

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"requests": self.requests, "connections": self.connections, "bytes": self.bytes}

    def split(self) -> dict[str, list[int]]:
        """A copy of ``by``, safe to take while requests go on."""
        with self._lock:
            return {key: list(counts) for key, counts in self.by.items()}

    def attach(self, api: client.ApiClient) -> client.ApiClient:
        """Meter this client's connections (its pool manager opens pools of metered connections)."""
        manager = api.rest_client.pool_manager
        manager.clear()  # no pool made before this point keeps unmetered connections
        # a new dict: PoolManager shares urllib3's module-level one by default
        manager.pool_classes_by_scheme = {
            "http": type("MeteredPool", (HTTPConnectionPool,), {"ConnectionCls": self._http}),
            "https": type("MeteredPool", (HTTPSConnectionPool,), {"ConnectionCls": self._https}),
        }
        return api

    def __enter__(self) -> Meter:
        self._saved = HTTPConnectionPool.ConnectionCls, HTTPSConnectionPool.ConnectionCls
        HTTPConnectionPool.ConnectionCls, HTTPSConnectionPool.ConnectionCls = self._http, self._https
        return self

    def __exit__(self, *_: object) -> None:
        assert self._saved
        HTTPConnectionPool.ConnectionCls, HTTPSConnectionPool.ConnectionCls = self._saved


class _Counted:
    """A response's socket reader that tells the meter how much was read through it."""

    def __init__(self, fp: Any, meter: Meter, key: str | None) -> None:
        self._fp, self._meter, self._key = fp, meter, key

    def _count(self, data: bytes) -> bytes:
        self._meter.add(bytes=len(data), key=self._key)
        return data

    def read(self, *args: Any) -> bytes:
        return self._count(self._fp.read(*args))

    def read1(self, *args: Any) -> bytes:
        return self._count(self._fp.read1(*args))

    def readline(self, *args: Any) -> bytes:
        return self._count(self._fp.readline(*args))

    def readinto(self, buffer: Any) -> int:
        read = self._fp.readinto(buffer)
        self._meter.add(bytes=read or 0, key=self._key)
        return read

    def readinto1(self, buffer: Any) -> int:
        read = self._fp.readinto1(buffer)
        self._meter.add(bytes=read or 0, key=self._key)
        return read

    def __getattr__(self, name: str) -> Any:  # peek, close, closed, fileno, …: nothing consumed
        return getattr(self._fp, name)


# The request a thread sent last: urllib3 reads the response in the thread that sent the request.
_sent = threading.local()


def _key(method: str, url: str) -> str:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    watch = query.get("watch", [""])[0].lower() in ("true", "1")
    return f"{method} {parts.path}{' watch' if watch else ' page' if query.get('continue') else ''}"


def _metered(base: type[HTTPConnection], meter: Meter) -> type[HTTPConnection]:
    class Response(http.client.HTTPResponse):
        def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(sock, *args, **kwargs)
            # before begin(): the status line and headers count too
            self.fp = _Counted(self.fp, meter, getattr(_sent, "key", None))

    class Connection(base):  # type: ignore[valid-type, misc]
        response_class = Response

        def connect(self) -> None:
            super().connect()
            meter.add(connections=1)

        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> None:
            _sent.key = _key(method, url)
            meter.add(requests=1, key=_sent.key)
            super().request(method, url, *args, **kwargs)

    return Connection


def node_names(nodes: int) -> list[str]:
    return [f"fake-{i:05d}" for i in range(nodes)]


def pod_body(i: int, nodes: int, steady: bool = False) -> dict:
    """Bulk pod ``i``: bound to fake node ``i % nodes``, in shard ``i % 10``; ``steady``: see :func:`fill`."""
    spec: dict[str, Any] = {"nodeName": f"fake-{i % nodes:05d}", "containers": [{"name": "c", "image": "none"}]}
    if steady:
        spec["tolerations"] = _TOLERATE_UNREADY
    return {"metadata": {"name": f"p-{i:05d}", "labels": {"app": "bulk", "shard": str(i % 10)}}, "spec": spec}


def fill(configuration: dict, nodes: int, pods: int, namespace: str = NAMESPACE, steady: bool = False) -> None:
    """Create ``namespace``, ``nodes`` fake Node objects and ``pods`` pods bound to them (plain API
    objects: no kubelet runs them). ``steady``: keep the node controller from acting on them
    for as long as the cluster runs (for measurements over minutes)."""
    with new_api_client(configuration) as api:
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": namespace}})

        def node(name: str) -> None:
            labels = {"type": "fake", **({_EXCLUDE_DISRUPTION: ""} if steady else {})}
            core.create_node({"metadata": {"name": name, "labels": labels},
                              "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.1"}]}})

        def pod(i: int) -> None:
            core.create_namespaced_pod(namespace, pod_body(i, nodes, steady))

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(node, node_names(nodes)))
            list(pool.map(pod, range(pods)))


@contextmanager
def lab_cluster(name: str, subnet: str, workers: int = 1) -> Iterator[dict]:
    """A one-master lab cluster of its own for the block; yields the Chaos Toolkit configuration
    that reaches it as admin. Brought down at the end, failure or not."""
    lab = Lab(name=name, subnet=subnet)
    lab.down()  # whatever a killed run of the same benchmark left behind
    try:
        cluster = Cluster(lab, nodes="kwok")
        cluster.up(masters=1, workers=workers)
        yield {"kubeconfig_path": str(cluster.admin_kubeconfig)}
    finally:
        lab.down()
