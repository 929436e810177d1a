"""The lab's Kubernetes cluster: real etcd, kube-apiserver, controller-manager and scheduler on the
master hosts, and the real CoreDNS as the cluster DNS (``dns.py``). Each worker runs a real kubelet,
containerd and kube-proxy (``nodes.py``), whose pods are real containers, where this machine can
run them; otherwise, and with ``nodes="kwok"``, kwok stands in for its kubelet, as it does on the
masters, and each such node's ``pods`` service (``podrunner.py``) runs CoreDNS and the real
kube-monkey for the pods bound there.

Each component is a service of its host (see ``sh/init.sh``), so cutting a master's
network really makes the API unreachable, and ``labctl restart kubelet`` on a host re-reads that
host's private ``/etc/kubernetes/kubelet.conf``, as a kubelet restarted by systemd would.
The API objects are laid out as kubeadm lays them out: control-plane node labels and taint, and
mirror pods ``<component>-<node>`` labelled ``component=…,tier=control-plane`` in kube-system.
"""

from __future__ import annotations

import base64
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import yaml
from chaoslib.exceptions import ActivityFailed
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from chaosali.cluster.api import new_api_client
from chaosali.cluster.health import api_problem, nodes_problem
from chaosali.core import private
from chaosali.core.waiting import wait_until
from chaosali.host.probes import names_resolve
from chaosali.kubemonkey import manifests as km
from chaosali.lab import dns, k8sbuild, monitoring, nodes as real_nodes, podrunner
from chaosali.monitoring.probes import query
from chaosali.lab.hosts import Lab, LabError, LabHost
from chaosali.lab.pki import make_pki, server_certificate

__all__ = ["Cluster", "COMPONENTS"]

logger = logging.getLogger("chaostoolkit")

API_PORT = 6443
# the decoy control plane of labs with real workers: its API server's port, its etcd's client and peer ports
DECOY_API_PORT = 7443
DECOY_ETCD_PORTS = (12379, 12380)
COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]
SERVICE_CIDR = "10.96.0.0/16"
NODE_LEASE_SECONDS = 10
# how long a silent kubelet keeps its node Ready: short, so drills see NotReady within seconds
NODE_GRACE_SECONDS = 20
# the highly available lab's: production's (40 s before Kubernetes 1.32, 50 s since), so that a master
# cut for master-netcut-ha's 15 s stays Ready with production's margin (at 20 s one went NotReady under load)
HA_NODE_GRACE_SECONDS = 40
# how long pods stay on a NotReady or unreachable node before they are evicted (300 s by default):
# short, so a drill of about two minutes sees its pods evicted and replaced
EVICTION_TOLERATION_SECONDS = 10
DEMO_NAMESPACE = "demo"
# workers spread over two zones (worker1 zone-a, worker2 zone-b, ...), as a zone outage drill needs
ZONE_LABEL = "topology.kubernetes.io/zone"
ZONES = ("zone-a", "zone-b")
#: What the workers run: kwok (simulated nodes, no containers) or a real kubelet and containerd.
NODE_KINDS = ("kwok", "real")


class Cluster:
    """A Kubernetes cluster on the hosts of ``lab``: masters, workers and, with 3 masters, a load balancer."""

    def __init__(self, lab: Lab, progress: Callable[[str], None] = logger.info, nodes: str | None = None) -> None:
        """``nodes``: what the workers run (:data:`NODE_KINDS`, or ``auto``: real ones if this machine can
        run containers, else kwok, saying in one line what is missing); by default what they run
        already, or ``auto``."""
        self.lab = lab
        self.progress = progress
        self.dir = lab.state_dir / "cluster"
        self.pki = self.dir / "pki"
        self.binaries: dict[str, Path] = {}
        self._kubelets: dict[str, list[str]] = {}
        kind_file = self.dir / "nodes"
        self.running_kind = kind_file.read_text().strip() if kind_file.exists() else None
        self.node_kind = nodes or self.running_kind or "auto"
        if self.node_kind == "auto":  # real where the machine can run containers, else kwok, saying why
            lacking = real_nodes.missing()
            self.node_kind = "kwok" if lacking else "real"
            if lacking:
                progress(f"kwok workers: real worker nodes need {', '.join(lacking)}")
        if self.node_kind not in NODE_KINDS:
            raise LabError(f"nodes {self.node_kind!r}: use one of {', '.join(NODE_KINDS)}, or auto")

    @classmethod
    def of(cls, lab: Lab) -> Cluster | None:
        """The cluster of a lab that is up, or None for a lab of plain hosts."""
        return cls(lab) if any(h.role == "master" for h in lab.hosts) else None

    @property
    def masters(self) -> list[LabHost]:
        return [h for h in self.lab.hosts if h.role == "master"]

    @property
    def nodes(self) -> list[LabHost]:
        return [h for h in self.lab.hosts if h.role in ("master", "worker")]

    def _workers(self) -> list[LabHost]:
        return [h for h in self.lab.hosts if h.role == "worker"]

    def _real(self, host: LabHost) -> bool:
        """Whether ``host`` runs a real kubelet (masters keep kwok, which holds their mirror pods)."""
        return self.node_kind == "real" and host.role == "worker"

    @property
    def balancer(self) -> LabHost | None:
        """The highly available variant puts its API servers behind a load balancer host."""
        return next((h for h in self.lab.hosts if h.role == "lb"), None)

    def up(self, masters: int = 1, workers: int = 2, monitored: bool = False) -> None:
        """Create (or complete) the lab's hosts and this cluster on them, with its monitoring
        (``monitored``: Prometheus, Alertmanager, node exporters); safe to call again with the same shape."""
        if masters not in (1, 3):
            raise LabError(f"{masters} masters: use 1, or 3 for the highly available variant")
        if self.lab.hosts and self.running_kind and self.running_kind != self.node_kind:
            raise LabError(f"lab {self.lab.name!r} is up with {self.running_kind} workers; "
                           "run 'chaosali lab down' first to change that")
        self.lab.place([("master", masters), ("worker", workers), ("lb", 1 if masters > 1 else 0),
                        (monitoring.ROLE, 1 if monitored else 0)])
        self.dir.mkdir(exist_ok=True)
        (self.dir / "nodes").write_text(self.node_kind)
        self.prepare()
        self.lab.start(self.services)
        self.lab.route({real_nodes.pod_subnet(self.lab.hosts.index(h)): h.address
                        for h in self._workers() if self._real(h)})
        self.bootstrap()
        configuration, scope = self.monitoring.variables() if self.monitoring else ({}, None)
        self.lab.write_vars({**self.variables(), **configuration}, {"prometheus": scope} if scope else None)

    @property
    def monitoring(self) -> monitoring.Monitoring | None:
        """The lab's monitoring, when it was brought up with it."""
        if not any(h.role == monitoring.ROLE for h in self.lab.hosts):
            return None
        return monitoring.Monitoring(self.dir / "monitoring", self.pki, self.lab.hosts,
                                     [h for h in self._workers() if self._real(h)])

    @property
    def endpoint(self) -> str:
        """The API server every client uses: the load balancer, or the only master."""
        return f"https://{(self.balancer or self.masters[0]).address}:{API_PORT}"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.lab.state_dir / "admin.kubeconfig"

    @property
    def readonly_kubeconfig(self) -> Path:
        return self.lab.state_dir / "readonly.kubeconfig"

    # -- before the hosts boot ------------------------------------------------------------------

    def prepare(self) -> None:
        """Binaries (built once into the cache), certificates and every kubeconfig."""
        real = [h for h in self._workers() if self._real(h)]
        if real:
            lacking = real_nodes.missing()
            if lacking:
                raise LabError(f"real worker nodes need {', '.join(lacking)}: run scripts/setup, or "
                               "apt-get install containerd runc containernetworking-plugins busybox-static")
        self.binaries = k8sbuild.ensure_binaries(
            self.progress, k8sbuild.CONTROL_PLANE_BINARIES + (k8sbuild.NODE_BINARIES if real else ()) + ("coredns",))
        stages = [yaml.safe_load(path.read_text()) for path in k8sbuild.kwok_pod_stages()] + [_POD_READY_AGAIN]
        kube_monkey = k8sbuild.kube_monkey(self.progress)
        if kube_monkey:  # its pods run for real (podrunner.py); without it they only look Running
            self.binaries["kube-monkey"] = kube_monkey
        stages = podrunner.kwok_stages(stages, self._workloads())
        make_pki(self.pki, [h.address for h in self.masters + [self.balancer] if h])
        if self.balancer:
            if not shutil.which("haproxy"):
                raise LabError("the highly available lab balances its API servers with haproxy: apt-get install haproxy")
            (self.dir / "haproxy.cfg").write_text(_haproxy_config(self.masters))
        (self.dir / "kwok.yaml").write_text(yaml.safe_dump_all(stages))
        if self.monitoring:
            self.monitoring.prepare()
        self._kubeconfig(self.admin_kubeconfig, "admin")
        for component in ("controller-manager", "scheduler"):
            self._kubeconfig(self.dir / f"{component}.kubeconfig", component, "https://127.0.0.1:6443")
        for host in self.nodes:
            kubelet_conf = self.lab.host_dir(host) / "fs" / "etc" / "kubernetes" / "kubelet.conf"
            kubelet_conf.parent.mkdir(parents=True, exist_ok=True)
            self._kubeconfig(kubelet_conf, "kubelet")
        if real:
            images = real_nodes.write_images(self.dir / "images", self._workload_images())
            for host in real:
                self._node_files(host, images)

    def _node_files(self, host: LabHost, images: Path) -> None:
        """A real worker's own containerd, CNI and kubelet configuration, at the usual paths of its
        host (under its ``fs/``, bind-mounted by ``sh/init.sh``), and its kubelet's argv."""
        fs = self.lab.host_dir(host) / "fs"
        serving = f"kubelet-{host.name}"
        server_certificate(self.pki, serving, host.name, [host.address])
        files = {
            "etc/containerd/config.toml": real_nodes.containerd_config(),
            "etc/cni/net.d/10-lab.conflist": real_nodes.cni_config(real_nodes.pod_subnet(self.lab.hosts.index(host))),
            "etc/kubernetes/kubelet-config.yaml": real_nodes.kubelet_config(
                host.namespace, self.pki / "ca.crt", NODE_LEASE_SECONDS,
                (self.pki / f"{serving}.crt", self.pki / f"{serving}.key")),
            "etc/kubernetes/kube-proxy.yaml": real_nodes.kube_proxy_config(host.name),
        }
        for name, text in files.items():
            (fs / name).parent.mkdir(parents=True, exist_ok=True)
            (fs / name).write_text(text)
        # its own kubeconfig (the kubelet's identity): a kubelet fault edits kubelet.conf only
        self._kubeconfig(fs / "etc/kubernetes/kube-proxy.conf", "kubelet")
        self._kubelets[host.name] = [
            "sh", str(self.lab.tools / "kubelet.sh"), real_nodes.cgroup_parent(host.namespace), str(images),
            str(self.binaries["kubelet"]), "--config=/etc/kubernetes/kubelet-config.yaml",
            "--kubeconfig=/etc/kubernetes/kubelet.conf", f"--hostname-override={host.name}",
            f"--node-ip={host.address}", "--v=1",
        ]

    def services(self, host: LabHost) -> dict[str, list[str]]:
        """The processes that make ``host`` a master, a worker or the load balancer (each a
        restartable service), and the monitoring's services there."""
        watched = self.monitoring.services(host) if self.monitoring else {}
        if host.role == monitoring.ROLE:
            return watched
        if host.role == "lb":
            return {"haproxy": ["/usr/sbin/haproxy", "-db", "-f", str(self.dir / "haproxy.cfg")], **watched}
        if self._real(host):
            return {"containerd": ["containerd", "--config=/etc/containerd/config.toml", "--log-level=warn"],
                    "kubelet": self._kubelets[host.name],
                    "kube-proxy": [str(self.binaries["kube-proxy"]), "--config=/etc/kubernetes/kube-proxy.yaml"],
                    **watched}
        index = self.lab.hosts.index(host)
        services = {
            "kubelet": [
                str(self.binaries["kwok"]), "--kubeconfig=/etc/kubernetes/kubelet.conf", f"--config={self.dir}/kwok.yaml",
                "--manage-all-nodes=false", f"--manage-single-node={host.name}",
                "--server-address=127.0.0.1:10247", f"--node-ip={host.address}",
                f"--cidr=10.244.{index}.1/24", f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
            ]
        }
        endpoint = self.balancer or self.masters[0]
        services["pods"] = [
            sys.executable, "-m", "chaosali.lab.podrunner", f"--node={host.name}",
            "--kubeconfig=/etc/kubernetes/kubelet.conf",
            *(f"--binary={name}={self.binaries[name]}" for name in self._workloads()),
            f"--api-host={endpoint.address}", f"--api-port={API_PORT}", f"--ca={self.pki}/ca.crt",
            f"--log-dir={self.lab.host_dir(host) / podrunner.LOG_DIR}",
        ]
        if host.role == "master":
            services = {**self._control_plane(host), **services}
        return {**services, **watched}

    def _workloads(self) -> list[str]:
        """The workloads whose pods the nodes run for real: those whose binary was built."""
        return [name for name in podrunner.WORKLOADS if name in self.binaries]

    def _workload_images(self) -> dict[str, Path]:
        """For real workers: the built binaries as images, each named as its manifest names it."""
        images = {"coredns": dns.IMAGE, km.NAME: km.DEFAULT_IMAGE}
        return {_full_image_name(images[name]): self.binaries[name] for name in self._workloads()}

    def _control_plane(self, host: LabHost) -> dict[str, list[str]]:
        pki, data = self.pki, self.lab.host_dir(host) / "data"
        peers = ",".join(f"{m.name}=http://{m.address}:2380" for m in self.masters)
        ha = len(self.masters) > 1
        authn = [f"--{kind}kubeconfig={{kc}}" for kind in ("", "authentication-", "authorization-")]
        decoy = {}
        if self.node_kind == "real" and host == self.masters[0]:
            # "the wrong cluster" of the kubelet-misconfig drill: another API server on this host, with
            # its own empty etcd, trusted by the kubelets as a sister cluster of one CA would be
            decoy = {
                "decoy-etcd": self._etcd("decoy", data / "decoy-etcd", ("127.0.0.1",), DECOY_ETCD_PORTS,
                                         f"decoy=http://127.0.0.1:{DECOY_ETCD_PORTS[1]}", f"{self.lab.name}-decoy"),
                "decoy-apiserver": self._apiserver(host, DECOY_ETCD_PORTS[0], DECOY_API_PORT, data / "decoy-certs"),
            }
        return {
            "etcd": self._etcd(host.name, data / "etcd", (host.address, "127.0.0.1"), (2379, 2380), peers,
                               self.lab.name),
            "kube-apiserver": self._apiserver(host, 2379, API_PORT, data / "apiserver-certs"),
            "kube-controller-manager": [
                str(self.binaries["kube-controller-manager"]),
                *(flag.format(kc=self.dir / "controller-manager.kubeconfig") for flag in authn),
                "--bind-address=0.0.0.0", f"--cert-dir={data}/kcm-certs",
                f"--service-account-private-key-file={pki}/sa.key", f"--root-ca-file={pki}/ca.crt",
                f"--cluster-signing-cert-file={pki}/ca.crt", f"--cluster-signing-key-file={pki}/ca.key",
                "--use-service-account-credentials=true", f"--leader-elect={str(ha).lower()}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--node-monitor-grace-period={HA_NODE_GRACE_SECONDS if ha else NODE_GRACE_SECONDS}s",
                "--node-monitor-period=2s", "--v=0",
            ],
            "kube-scheduler": [
                str(self.binaries["kube-scheduler"]),
                *(flag.format(kc=self.dir / "scheduler.kubeconfig") for flag in authn),
                "--bind-address=0.0.0.0", f"--cert-dir={data}/scheduler-certs",
                f"--leader-elect={str(ha).lower()}", "--v=0",
            ],
            **decoy,
        }

    def _etcd(self, name: str, data: Path, listen: tuple[str, ...], ports: tuple[int, int], peers: str,
              token: str) -> list[str]:
        """An etcd member named ``name`` of cluster ``token``, serving clients on ``listen`` at ``ports[0]``."""
        client, peer = ports
        return [
            str(self.binaries["etcd"]), f"--name={name}", f"--data-dir={data}",
            f"--listen-client-urls={','.join(f'http://{a}:{client}' for a in listen)}",
            f"--advertise-client-urls=http://{listen[0]}:{client}",
            f"--listen-peer-urls=http://{listen[0]}:{peer}",
            f"--initial-advertise-peer-urls=http://{listen[0]}:{peer}",
            f"--initial-cluster={peers}", "--initial-cluster-state=new",
            f"--initial-cluster-token={token}", f"--listen-metrics-urls=http://127.0.0.1:{client + 2}",
            "--log-level=warn", "--unsafe-no-fsync=true",
        ]

    def _apiserver(self, host: LabHost, etcd_port: int, port: int, cert_dir: Path) -> list[str]:
        """A kube-apiserver of ``host`` on ``port``, storing in the etcd at ``etcd_port`` on the host."""
        pki = self.pki
        return [
            str(self.binaries["kube-apiserver"]), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=0.0.0.0", f"--secure-port={port}", f"--advertise-address={host.address}",
            f"--tls-cert-file={pki}/apiserver.crt", f"--tls-private-key-file={pki}/apiserver.key",
            f"--client-ca-file={pki}/ca.crt",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki}/sa.pub", f"--service-account-signing-key-file={pki}/sa.key",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--authorization-mode=Node,RBAC",
            "--allow-privileged=true", f"--requestheader-client-ca-file={pki}/ca.crt",
            "--requestheader-allowed-names=front-proxy-client", "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group", "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki}/front-proxy-client.crt",
            f"--proxy-client-key-file={pki}/front-proxy-client.key", f"--cert-dir={cert_dir}", "--v=0",
            # `kubectl logs` and `exec`: the real kubelets trust the lab's CA (kubelet_config)
            f"--kubelet-client-certificate={pki}/apiserver-kubelet-client.crt",
            f"--kubelet-client-key={pki}/apiserver-kubelet-client.key",
            f"--default-not-ready-toleration-seconds={EVICTION_TOLERATION_SECONDS}",
            f"--default-unreachable-toleration-seconds={EVICTION_TOLERATION_SECONDS}",
        ]

    def _kubeconfig(self, path: Path, leaf: str, server: str | None = None) -> None:
        def data(name: str) -> str:
            return base64.b64encode((self.pki / name).read_bytes()).decode()

        private.write(path, yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": self.lab.name,
            "clusters": [{"name": self.lab.name, "cluster": {
                "server": server or self.endpoint, "certificate-authority-data": data("ca.crt")}}],
            "users": [{"name": leaf, "user": {
                "client-certificate-data": data(f"{leaf}.crt"), "client-key-data": data(f"{leaf}.key")}}],
            "contexts": [{"name": self.lab.name, "context": {"cluster": self.lab.name, "user": leaf}}],
        }, sort_keys=False))

    # -- once the hosts run -------------------------------------------------------------------------

    def bootstrap(self) -> None:
        """Wait for the API, then lay out nodes, mirror pods, a read-only user and a demo workload."""
        api = self._client()
        try:
            started = time.monotonic()
            self._wait("the API to answer /readyz", lambda: api_problem(2, self._config, None) is None, 90)
            self.progress(f"API ready at {self.endpoint} after {time.monotonic() - started:.1f} s")
            core = k8s.CoreV1Api(api)
            for host in self.nodes:
                node = self._node(host)
                try:
                    core.create_node(node)
                except ApiException as error:
                    if error.status != 409:
                        raise
                    # registered already (a real kubelet does it itself): give it the lab's labels
                    core.patch_node(host.name, {"metadata": node["metadata"]})
            self._wait("kube-system/default service account",
                       lambda: _exists(lambda: core.read_namespaced_service_account("default", "kube-system")), 60)
            for host in self.masters:
                for component in COMPONENTS:
                    _create(lambda body: core.create_namespaced_pod("kube-system", body), _mirror_pod(component, host))
            self._readonly(api)
            # the workloads once every node is Ready: real kubelets register late, and the scheduler
            # would put every replica on the first one
            self._wait("every node Ready", lambda: nodes_problem(None, self._config, None) is None, 90)
            dns.deploy(api, _create, self._dns_replicas)
            self._demo(api)
            self._wait("the demo workload available", lambda: self._demo_available(api), 90)
            if self._dns_replicas:
                self._wait(f"the cluster DNS to resolve {dns.CHECK_NAME}", self._dns_resolves, 60)
            if self.monitoring:
                self._wait("Prometheus to scrape the API server", self._monitoring_ready, 60)
            self.progress(f"cluster ready after {time.monotonic() - started:.1f} s")
        finally:
            api.close()

    @property
    def _config(self) -> dict:
        """Chaos Toolkit configuration that reaches this cluster as its admin."""
        return {"kubeconfig_path": str(self.admin_kubeconfig)}

    def _client(self) -> k8s.ApiClient:
        return new_api_client(self._config, retries=0)

    def variables(self) -> dict:
        """Configuration for experiments run against the lab (chaos --var-file)."""
        return {
            "kubeconfig_path": str(self.admin_kubeconfig),
            "lab_nodes": self.node_kind,
            # kubelet-misconfig's "wrong cluster": an API server that answers, where none of the pods are
            # the images its real workers have (nothing can be pulled: pods use imagePullPolicy Never)
            **({"lab_images": [*real_nodes.IMAGES, *self._workload_images()], "wrong_apiserver": self.decoy_endpoint,
                "web_urls": [f"http://{h.address}:{real_nodes.WEB_NODE_PORT}/" for h in self._workers()],
                # each worker's own replica: the web-local Service's NodePort (see _demo)
                "web_replica_urls": [f"http://{h.address}:{real_nodes.WEB_LOCAL_NODE_PORT}/" for h in self._workers()]}
               if self.node_kind == "real" else {}),
        }

    @property
    def decoy_endpoint(self) -> str:
        """The decoy API server of a lab with real workers (see :meth:`_control_plane`)."""
        return f"https://{self.masters[0].address}:{DECOY_API_PORT}"

    def status(self) -> dict:
        """The API's health and, per host, each service as ``labctl`` reports it."""
        ready = api_problem(2, self._config, None) is None
        # the last lines of each pod the nodes run for real: what kube-monkey scheduled and killed,
        # what the cluster DNS was asked
        pods = {name: log.splitlines()[-10:] for name, log in self.pod_logs().items()}
        watched = self.monitoring
        addresses = {"monitoring": {"prometheus": watched.prometheus_url, "alertmanager": watched.alertmanager_url,
                                    "scraping_the_api": self._monitoring_ready()}} if watched else {}
        return {"api": self.endpoint, "api_ready": ready, **addresses, "services": self.lab.services(),
                **({"pod_logs": pods} if pods else {})}

    def containerd_sockets(self) -> list[Path]:
        """The containerd socket of each real worker, as this machine reaches it (images are imported there)."""
        return [self.lab.host_dir(h) / "fs" / "run" / "containerd" / "containerd.sock"
                for h in self._workers() if self._real(h)]

    def pod_logs(self) -> dict[str, str]:
        """What each pod run for real wrote, by ``<host>/<namespace>_<pod>``: the containers of a real
        worker, the processes of a kwok node's ``pods`` service."""
        return {f"{host.name}/{pod}": log for host in self.nodes
                for pod, log in (real_nodes if self._real(host) else podrunner).pod_logs(self.lab.host_dir(host)).items()}

    def _node(self, host: LabHost) -> dict:
        master = host.role == "master"
        role = "control-plane" if master else "worker"
        kind = "real" if self._real(host) else "kwok"
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": host.name,
                "labels": {"kubernetes.io/hostname": host.name, "kubernetes.io/os": "linux",
                           f"node-role.kubernetes.io/{role}": "", "type": kind,
                           **({} if master else {ZONE_LABEL: ZONES[self._workers().index(host) % len(ZONES)]})},
                "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                **({"kwok.x-k8s.io/node": "fake"} if kind == "kwok" else {})},
            },
            "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}
            if master else {},
        }

    def _readonly(self, api: k8s.ApiClient) -> None:
        """A service account bound to the built-in ``view`` role, and a kubeconfig with its token."""
        name = "chaosali-readonly"
        core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
        _create(lambda body: core.create_namespaced_service_account("kube-system", body),
                {"metadata": {"name": name}})
        _create(rbac.create_cluster_role_binding, {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "kube-system"}],
        })
        token = core.create_namespaced_service_account_token(
            name, "kube-system", {"spec": {"expirationSeconds": 7 * 86400}}
        ).status.token
        config = yaml.safe_load(self.admin_kubeconfig.read_text())
        config["users"] = [{"name": name, "user": {"token": token}}]
        config["contexts"][0]["context"]["user"] = name
        private.write(self.readonly_kubeconfig, yaml.safe_dump(config, sort_keys=False))

    def _demo(self, api: k8s.ApiClient) -> None:
        core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
        labels = {"app": "web"}
        container: dict[str, Any] = {"name": "web", "image": "nginx:1.27"}
        if self.node_kind == "real":  # the lab's own image (nothing can be pulled), served for real
            container = {"name": "web", "image": real_nodes.WEB_IMAGE, "imagePullPolicy": "Never",
                         "ports": [{"containerPort": real_nodes.WEB_PORT}],
                         # out of the Service after three missed probes (Kubernetes' default threshold): one
                         # slow answer on a loaded CPU is not an outage, and the one replica left while
                         # a drill has the other down would otherwise make the drill's impact core
                         "readinessProbe": {"httpGet": {"path": "/", "port": real_nodes.WEB_PORT},
                                            "periodSeconds": 2, "failureThreshold": 3},
                         # a pod being deleted serves on until every node's kube-proxy has dropped it
                         # (a rollout or a drain loses no request), as production's preStop sleep does
                         "lifecycle": {"preStop": {"exec": {"command": ["/bin/busybox", "sleep", "5"]}}}}
        _create(core.create_namespace, {"metadata": {"name": DEMO_NAMESPACE}})
        _create(lambda body: apps.create_namespaced_deployment(DEMO_NAMESPACE, body), {
            "metadata": {"name": "web", "labels": labels},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container], "topologySpreadConstraints": spread_constraints(labels)}}},
        })
        # a drain or an eviction keeps one replica serving (the Eviction API honours it)
        _create(lambda body: k8s.PolicyV1Api(api).create_namespaced_pod_disruption_budget(DEMO_NAMESPACE, body),
                {"metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}}})
        service = {"selector": labels, "ports": [{"port": 80}]}
        if self.node_kind == "real":  # reachable through any worker, as the drills' HTTP samples need
            service = {"type": "NodePort", "selector": labels, "ports": [
                {"port": 80, "targetPort": real_nodes.WEB_PORT, "nodePort": real_nodes.WEB_NODE_PORT}]}
        _create(lambda body: core.create_namespaced_service(DEMO_NAMESPACE, body),
                {"metadata": {"name": "web"}, "spec": service})
        if self.node_kind == "real":
            # each worker's NodePort answers from that worker's replica only (externalTrafficPolicy
            # Local): a drill that loads one worker tells its replica from the other's
            _create(lambda body: core.create_namespaced_service(DEMO_NAMESPACE, body), {
                "metadata": {"name": "web-local"}, "spec": {
                    "type": "NodePort", "externalTrafficPolicy": "Local", "selector": labels, "ports": [
                        {"port": 80, "targetPort": real_nodes.WEB_PORT, "nodePort": real_nodes.WEB_LOCAL_NODE_PORT}]}})

    @property
    def _dns_replicas(self) -> int:
        """CoreDNS pods: kubeadm's two, one a worker (each takes its node's port 53)."""
        return min(dns.REPLICAS, len(self._workers()))

    def _dns_resolves(self) -> bool:
        """Whether every CoreDNS pod resolves the cluster's name on its node (the pods may be unbound yet)."""
        try:
            found = names_resolve(dns.TARGETS, [dns.CHECK_NAME], configuration=self._config)  # type: ignore[arg-type]  # targets: a query too
        except ActivityFailed:
            return False
        return found["proved"] and len(found["hosts"]) == self._dns_replicas

    def _monitoring_ready(self) -> bool:
        """Whether Prometheus answers, with its auth, that it scrapes an API server."""
        watched = self.monitoring
        if watched is None:
            return False
        configuration, scope = watched.variables()
        try:
            return query('max(up{job="kube-apiserver"}) == 1', timeout=2, configuration=configuration,
                         secrets=scope) is not None
        except ActivityFailed:
            return False

    @staticmethod
    def _demo_available(api: k8s.ApiClient) -> bool:
        status = k8s.AppsV1Api(api).read_namespaced_deployment("web", DEMO_NAMESPACE).status
        return (status.available_replicas or 0) >= 2

    def _wait(self, what: str, condition: Callable[[], bool], timeout: float) -> None:
        self.progress(f"waiting for {what}")
        if not wait_until(condition, time.monotonic() + timeout, 0.25)[0]:
            raise LabError(f"timed out after {timeout:g} s waiting for {what}; see {self.lab.state_dir}/hosts/*/*.log")


# A kubelet that is back reports its running pods Ready again; kwok's own stages only make new
# pods ready, so pods the node controller marked NotReady during an outage would stay so.
_POD_READY_AGAIN = {
    "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": "pod-ready-again"},
    "spec": {
        "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
        "selector": {"matchExpressions": [
            {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
            {"key": ".status.phase", "operator": "In", "values": ["Running"]},
            {"key": '.status.conditions.[] | select( .type == "Ready" ) | .status', "operator": "In",
             "values": ["False"]},
        ]},
        "next": {"statusTemplate": "\n".join([
            "{{ $now := Now }}", "conditions:",
            *(f"- {{type: {kind}, status: \"True\", lastTransitionTime: {{{{ $now | Quote }}}}}}"
              for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled")),
            "containerStatuses:", "{{ range .spec.containers }}",
            "- {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: true, restartCount: 0, "
            "state: {running: {startedAt: {{ $now | Quote }}}}}",
            "{{ end }}",
        ])},
    },
}


def spread_constraints(labels: dict[str, str]) -> list[dict]:
    """One replica per node and per zone, as a production service spreads: a pod that would break
    it is not scheduled (DoNotSchedule), over the nodes that take new pods (a cordoned or NotReady
    node's taints leave it out, so a replacement goes to the surviving node), counting the pods of
    the current rollout only (a rollout restart spreads its new pods anew: ``chaosali.spread``)."""
    return [{"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "DoNotSchedule", "nodeTaintsPolicy": "Honor",
             "matchLabelKeys": ["pod-template-hash"], "labelSelector": {"matchLabels": labels}}
            for key in ("kubernetes.io/hostname", ZONE_LABEL)]


def _haproxy_config(masters: list[LabHost]) -> str:
    """TCP balancing over the API servers, checked as a production balancer checks them: an API
    server leaves once its /readyz fails (an etcd member cut from its quorum) or it stops
    answering, within ~1 s, its open connections (watches) closed so that clients reconnect to
    another; a connection that fails on it is dispatched to another."""
    return "\n".join([
        "global", "    maxconn 4096",
        # a connect to a cut master fails fast and is retried on another one at once
        "defaults", "    mode tcp", "    timeout connect 300ms", "    timeout client 1h", "    timeout server 1h",
        "    option redispatch 1", "    retries 2",
        "frontend apiserver", f"    bind *:{API_PORT}", "    default_backend masters",
        "backend masters", "    balance roundrobin", "    option httpchk GET /readyz",
        "    default-server check check-ssl verify none inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions",
        *(f"    server {m.name} {m.address}:{API_PORT}" for m in masters),
        "",
    ])


def _mirror_pod(component: str, host: LabHost) -> dict:
    return {
        "metadata": {"name": f"{component}-{host.name}", "namespace": "kube-system",
                     "labels": {"component": component, "tier": "control-plane"}},
        "spec": {
            "nodeName": host.name, "hostNetwork": True, "priorityClassName": "system-node-critical",
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": component, "image": f"registry.k8s.io/{component}:{k8sbuild.KUBERNETES_VERSION}"}],
        },
    }


def _full_image_name(image: str) -> str:
    """An image's name as containerd stores it: Docker Hub's short names in full."""
    first, _, rest = image.partition("/")
    if not rest:
        return f"docker.io/library/{image}"
    return image if "." in first or ":" in first or first == "localhost" else f"docker.io/{image}"


def _create(create: Callable[[dict], object], body: dict) -> None:
    """Create an object; one that already exists is fine (the lab is brought up idempotently)."""
    try:
        create(body)
    except ApiException as error:
        if error.status != 409:
            raise


def _exists(read: Callable[[], object]) -> bool:
    try:
        read()
        return True
    except ApiException as error:
        if error.status == 404:
            return False
        raise
