"""The lab's monitoring: Prometheus and Alertmanager on a host of their own, a node exporter on
every lab host, and alert rules whose ``for:`` is short enough for a drill to see them fire.

All three are Debian's packages (``scripts/setup`` installs them), run as services of the lab's
hosts (``sh/init.sh``), never as the machine's own systemd units. Prometheus is served over TLS
(a certificate of the lab's CA) with basic auth (its web configuration file), so that clients'
auth is tested for real; it scrapes the API servers with the admin's client certificate, etcd,
the controller-managers and schedulers, the real workers' kubelets (the admin's client
certificate again: they authenticate clients by the lab's CA; their serving certificates are the
lab CA's too, so verified), every node exporter and itself. Prometheus lives apart
from the masters so that a master cut is seen, not shared.

A blackbox exporter beside Prometheus asks the cluster DNS, as a client would, for a name every
cluster has: CoreDNS's metrics port keeps answering while its port 53 is dropped, so only a query
from outside sees DNS go silent. The lab's CoreDNS pods serve on their workers' addresses (no pod
network: ``dns.py``), so each worker's port 53 is probed from the monitoring host, across the path
a network fault cuts.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import bcrypt
import yaml

from chaosali.core import private
from chaosali.lab import dns
from chaosali.lab.hosts import LabError, LabHost
from chaosali.lab.pki import server_certificate

__all__ = ["Monitoring", "ROLE", "RULES", "PROMETHEUS_PORT", "ALERTMANAGER_PORT", "NODE_EXPORTER_PORT",
           "BLACKBOX_PORT"]

ROLE = "monitor"
PROMETHEUS_PORT, ALERTMANAGER_PORT, NODE_EXPORTER_PORT, KUBELET_PORT, BLACKBOX_PORT = 9090, 9093, 9100, 10250, 9115
USER = "chaosali"
_BINARIES = {"prometheus": "/usr/bin/prometheus", "alertmanager": "/usr/bin/prometheus-alertmanager",
             "node-exporter": "/usr/bin/prometheus-node-exporter",
             "blackbox-exporter": "/usr/bin/prometheus-blackbox-exporter"}
# a scrape every 2 s and a rule evaluation every 1 s: an alert with `for: 2s` fires ~5 s after
# its target stops answering
_SCRAPE = {"scrape_interval": "2s", "scrape_timeout": "1500ms", "evaluation_interval": "1s"}
# the node exporter's collectors that the rules read, and no more (the cpu collector's each host's own)
_COLLECTORS = ("cpu", "filesystem", "loadavg", "meminfo", "stat")
_CONTROL_PLANE = "kube-apiserver|kube-controller-manager|kube-scheduler|etcd"
# the blackbox exporter's module: the API's Service name by UDP, answered with an address. One try
# of a second: a dropped query is a failed probe at the next scrape, not retried past it
_DNS_MODULE = {"prober": "dns", "timeout": "1s", "dns": {
    "transport_protocol": "udp", "preferred_ip_protocol": "ip4", "ip_protocol_fallback": False,
    "query_name": dns.CHECK_NAME, "query_type": "A", "valid_rcodes": ["NOERROR"],
    "validate_answer_rrs": {"fail_if_none_matches_regexp": [r".*\tIN\tA\t.*"]}}}


def _rule(name: str, expression: str, wait: str, summary: str, severity: str = "critical") -> dict:
    return {"alert": name, "expr": expression, "for": wait, "labels": {"severity": severity},
            "annotations": {"summary": summary}}


def _restarted(name: str, jobs: str, severity: str = "critical") -> dict:
    # a process that its supervisor restarts at once may answer every scrape: its start time tells
    # (a minute long, so that a drill's recording sees it)
    return _rule(name, f'changes(process_start_time_seconds{{job=~"{jobs}"}}[1m]) > 0', "0s",
                 "{{ $labels.job }} on {{ $labels.host }} restarted", severity)


RULES = [
    # the targets are static: `up` of each exists from the first scrape on (no absent() needed)
    _rule("KubeAPIDown", 'sum(up{job="kube-apiserver"}) == 0', "1s",
          "no API server answers its metrics"),
    _restarted("ControlPlaneRestarted", _CONTROL_PLANE),
    _rule("EtcdNoLeader", "etcd_server_has_leader == 0", "2s", "etcd member {{ $labels.host }} has no leader"),
    _rule("EtcdMemberDown", 'up{job="etcd"} == 0', "2s", "etcd member {{ $labels.host }} does not answer"),
    _rule("KubeNodeNotReady", "sum(node_collector_unhealthy_nodes_in_zone) > 0", "2s",
          "the node lifecycle controller counts unhealthy nodes"),
    _rule("HostDown", 'up{job="node"} == 0', "2s", "host {{ $labels.host }} does not answer"),
    # no DNS server of the cluster answers a client's query (one that answers keeps the names resolving)
    _rule("ClusterDNSDown", 'max(probe_success{job="cluster-dns"}) == 0', "2s",
          "no server of the cluster DNS answers a query"),
    # seen within seconds, where KubeNodeNotReady waits out the node's grace (none with kwok workers)
    _rule("KubeletDown", 'up{job="kubelet"} == 0', "2s", "the kubelet of {{ $labels.host }} does not answer"),
    # a rebooted lab host is back in seconds, its kubelet down for less than KubeletDown's scrape and
    # `for:`; nor does the host's boot time tell (node_boot_time_seconds is the machine's): the
    # kubelet's own start time does, as a real node's rebooted kubelet's would
    _restarted("KubeletRestarted", "kubelet", "warning"),
    # each lab host has CPUs of its own (hosts.cpus_for), and its exporter reads their time as the
    # host's processes used it (lxcfs): one series per host, the stressed one's alone. The idle share
    # of all the time counted, not an average per CPU: the exporter lists a CPU the host lacks (cpu0
    # of a host on cpu1) with no time at all. 80 %: the machine's other work shares a worker's CPU,
    # and a saturated host gets what it leaves
    _rule("HostCPUSaturated", '1 - sum by (host) (rate(node_cpu_seconds_total{mode="idle"}[6s])) '
          "/ sum by (host) (rate(node_cpu_seconds_total[6s])) > 0.8", "2s",
          "the CPUs of {{ $labels.host }} are saturated", "warning"),
    # before the kubelet's own hard eviction threshold (nodefs.available < 10 %): a warning while
    # the pods still run. One series per mount point: a bind mount is listed again under its device
    _rule("HostDiskNearlyFull", "min by (host, mountpoint) (node_filesystem_avail_bytes / node_filesystem_size_bytes)"
          " < 0.15 unless on (host, mountpoint) max by (host, mountpoint) (node_filesystem_readonly) == 1", "2s",
          "{{ $labels.mountpoint }} on {{ $labels.host }} is nearly full", "warning"),
]


class Monitoring:
    """The monitoring of a lab cluster: ``hosts`` are every lab host, ``kubelets`` those that run
    a real kubelet (none when the workers are kwok, which serves no kubelet metrics)."""

    def __init__(self, directory: Path, pki: Path, hosts: list[LabHost], kubelets: list[LabHost] | None = None) -> None:
        self.dir, self.pki, self.hosts, self.kubelets = directory, pki, hosts, kubelets or []

    @property
    def host(self) -> LabHost:
        return next(h for h in self.hosts if h.role == ROLE)

    @property
    def prometheus_url(self) -> str:
        return f"https://{self.host.address}:{PROMETHEUS_PORT}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{self.host.address}:{ALERTMANAGER_PORT}"

    @property
    def _password_file(self) -> Path:
        return self.dir / "password"

    def prepare(self) -> None:
        """Check the binaries; write the certificate, the password and every configuration file."""
        missing = [path for path in _BINARIES.values() if not shutil.which(path)]
        if missing:
            raise LabError(f"{', '.join(missing)} not found: the lab's monitoring needs apt-get install "
                           "prometheus prometheus-alertmanager prometheus-node-exporter prometheus-blackbox-exporter "
                           "(scripts/setup does it)")
        self.dir.mkdir(parents=True, exist_ok=True)
        server_certificate(self.pki, "prometheus", "prometheus", [self.host.address, "127.0.0.1"])
        if not self._password_file.exists():
            private.write(self._password_file, secrets.token_urlsafe(24))
        hashed = bcrypt.hashpw(self._password_file.read_bytes(), bcrypt.gensalt(rounds=10)).decode()
        self._write("web.yml", {"tls_server_config": {"cert_file": str(self.pki / "prometheus.crt"),
                                                      "key_file": str(self.pki / "prometheus.key")},
                                "basic_auth_users": {USER: hashed}})
        self._write("rules.yml", {"groups": [{"name": "chaosali-lab", "interval": "1s", "rules": RULES}]})
        self._write("prometheus.yml", self._prometheus_config())
        self._write("blackbox.yml", {"modules": {"cluster_dns": _DNS_MODULE}})
        self._write("alertmanager.yml", {"route": {"receiver": "lab", "group_wait": "0s", "group_interval": "1s",
                                                   "repeat_interval": "1h"},
                                         "receivers": [{"name": "lab"}]})

    def services(self, host: LabHost) -> dict[str, list[str]]:
        """The monitoring's services on ``host``: a node exporter everywhere, Prometheus and
        Alertmanager on the monitoring host."""
        services = {"node-exporter": [
            _BINARIES["node-exporter"], f"--web.listen-address={host.address}:{NODE_EXPORTER_PORT}",
            "--collector.disable-defaults", *(f"--collector.{name}" for name in _COLLECTORS), "--log.level=warn"]}
        if host.role == ROLE:
            services["prometheus"] = [
                _BINARIES["prometheus"], f"--config.file={self.dir / 'prometheus.yml'}",
                f"--web.config.file={self.dir / 'web.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address={host.address}:{PROMETHEUS_PORT}", "--storage.tsdb.retention.time=1d",
                "--log.level=warn"]
            services["blackbox-exporter"] = [
                _BINARIES["blackbox-exporter"], f"--config.file={self.dir / 'blackbox.yml'}",
                f"--web.listen-address={host.address}:{BLACKBOX_PORT}", "--log.level=warn"]
            services["alertmanager"] = [
                _BINARIES["alertmanager"], f"--config.file={self.dir / 'alertmanager.yml'}",
                f"--storage.path={self.dir / 'alertmanager'}", f"--web.listen-address={host.address}:{ALERTMANAGER_PORT}",
                "--cluster.listen-address=", "--log.level=warn"]
        return services

    def variables(self) -> tuple[dict, dict]:
        """The configuration and the ``prometheus`` secrets scope of the lab's var file."""
        configuration = {"prometheus_url": self.prometheus_url, "alertmanager_url": self.alertmanager_url}
        scope = {"username": USER, "password": self._password_file.read_text(),
                 "ca_bundle": str(self.pki / "ca.crt")}
        return configuration, scope

    def _prometheus_config(self) -> dict:
        masters = [h for h in self.hosts if h.role == "master"]
        tls = {"ca_file": str(self.pki / "ca.crt")}
        admin = {**tls, "cert_file": str(self.pki / "admin.crt"), "key_file": str(self.pki / "admin.key")}
        # the controller-manager's and scheduler's serving certificates are self-signed (their --cert-dir)
        self_signed = {"insecure_skip_verify": True, "cert_file": admin["cert_file"], "key_file": admin["key_file"]}

        def job(name: str, hosts: list[LabHost], port: int, **settings: object) -> dict:
            # HTTP/1.1: a scrape that times out closes its connection. An HTTP/2 connection cut by a
            # fault would be reused, dead, for minutes after the heal, and the target seen down
            return {"job_name": name, "enable_http2": False, **settings, "static_configs": [
                {"targets": [f"{h.address}:{port}"], "labels": {"host": h.name}} for h in hosts]}

        return {
            "global": _SCRAPE,
            "rule_files": [str(self.dir / "rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [
                {"targets": [f"{self.host.address}:{ALERTMANAGER_PORT}"]}]}]},
            "scrape_configs": [
                job("prometheus", [self.host], PROMETHEUS_PORT, scheme="https", tls_config=tls,
                    basic_auth={"username": USER, "password_file": str(self._password_file)}),
                job("kube-apiserver", masters, 6443, scheme="https", tls_config=admin),
                job("etcd", masters, 2379),
                job("kube-controller-manager", masters, 10257, scheme="https", tls_config=self_signed),
                job("kube-scheduler", masters, 10259, scheme="https", tls_config=self_signed),
                job("node", self.hosts, NODE_EXPORTER_PORT),
                *([job("kubelet", self.kubelets, KUBELET_PORT, scheme="https", tls_config=admin)]
                  if self.kubelets else []),
                # the exporter asks each target's port 53 (its host label names the worker probed)
                job("cluster-dns", [h for h in self.hosts if h.role == "worker"], 53, metrics_path="/probe",
                    params={"module": ["cluster_dns"]}, relabel_configs=[
                        {"source_labels": ["__address__"], "target_label": "__param_target"},
                        {"target_label": "__address__", "replacement": f"{self.host.address}:{BLACKBOX_PORT}"}]),
            ],
        }

    def _write(self, name: str, document: dict) -> None:
        private.write(self.dir / name, yaml.safe_dump(document, sort_keys=False))
