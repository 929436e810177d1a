"""Real worker nodes for the lab: a kubelet and Debian's containerd, runc and CNI plugins per worker.

A real worker is a lab host (see ``hosts.py``) whose services are ``containerd`` and ``kubelet``
(``sh/kubelet.sh`` prepares what the kubelet needs, then runs it). Each host keeps its own
everything at the usual paths, bind-mounted per host by ``sh/init.sh``: containerd's root
``/var/lib/containerd``, its state and socket under ``/run/containerd``, its configuration
``/etc/containerd/config.toml``, the kubelet's ``/var/lib/kubelet``, pod logs ``/var/log/pods``, the
CNI configuration ``/etc/cni/net.d`` (a bridge with host-local addresses, one pod subnet per
node) and its leases ``/var/lib/cni``. Its cgroup parent is ``/<lab>-<host>`` under every
controller, so two workers share one kernel without touching each other or the machine.

There is no registry: the images are built here from Debian's ``busybox-static`` (a pause image
and a small web server), written as Docker archives, imported into each worker's containerd, and
used with ``imagePullPolicy: Never``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import platform
import shutil
import tarfile
import time
from pathlib import Path
from typing import Callable

import yaml

from chaosali.lab import dns

__all__ = ["IMAGES", "PAUSE_IMAGE", "WEB_IMAGE", "WEB_PORT", "missing", "write_images", "containerd_config",
           "cni_config", "kubelet_config", "kube_proxy_config", "pod_subnet", "POD_CIDR", "WEB_NODE_PORT", "WEB_LOCAL_NODE_PORT", "remove_cgroups", "cgroup_parent", "pod_logs"]

BUSYBOX = Path("/bin/busybox")
PAUSE_IMAGE = "lab.chaosali.invalid/pause:1"
WEB_IMAGE = "lab.chaosali.invalid/web:1"
WEB_PORT = 80
#: The demo web Service's NodePort on every real worker.
WEB_NODE_PORT = 30080
#: The NodePort of the demo's ``web-local`` Service, which answers from the worker's own replica.
WEB_LOCAL_NODE_PORT = 30081
#: Every node's pod subnet (:func:`pod_subnet`) lies in it.
POD_CIDR = "10.244.0.0/16"
# what each image runs: the pause container only holds the pod's namespaces; the web server
# answers with its pod's name, so a client can tell which replica served it
IMAGES = {
    PAUSE_IMAGE: ["/bin/busybox", "sleep", "2147483647"],
    # a shell as the container's PID 1 that ends on SIGTERM: httpd as PID 1 would ignore it, and every
    # deletion would wait out the pod's grace period (30 s) for the kubelet's SIGKILL
    WEB_IMAGE: ["/bin/busybox", "sh", "-c",
                "/bin/busybox hostname > /www/index.html; trap 'exit 0' TERM; "
                f"/bin/busybox httpd -f -p {WEB_PORT} -h /www & wait"],
}
CGROUP_ROOT = Path("/sys/fs/cgroup")
ZONEINFO = Path("/usr/share/zoneinfo")
_TOOLS = ("containerd", "runc", "ctr", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback",
          str(BUSYBOX))


def missing() -> list[str]:
    """What this machine lacks to run real worker nodes (empty when nothing is missing)."""
    lacking = [tool for tool in _TOOLS if not shutil.which(tool)]
    if not (CGROUP_ROOT / "memory").is_dir() and not (CGROUP_ROOT / "cgroup.controllers").exists():
        lacking.append("a cgroup hierarchy under /sys/fs/cgroup")
    if "overlay" not in Path("/proc/filesystems").read_text():
        lacking.append("overlayfs")
    return lacking


def cgroup_parent(namespace: str) -> str:
    """The kubelet's cgroup root of the node of this lab host: named like its network namespace."""
    return f"/{namespace}"


def pod_subnet(index: int) -> str:
    """The pod addresses of the node that is host number ``index`` of its lab (as kwok's ``--cidr``)."""
    return f"10.244.{index}.0/24"


# -- images --------------------------------------------------------------------------------------


def write_images(directory: Path, binaries: dict[str, Path] | None = None) -> Path:
    """Every image as a Docker archive in ``directory``, and ``images.txt`` ("NAME ARCHIVE" a line)
    for ``sh/kubelet.sh``, which imports what its containerd lacks; returns that list's path.

    ``binaries`` adds an image per workload the lab builds from source (image name: its static
    binary), named as its manifest names it, so that the kubelet finds it present and pulls nothing:
    the binary at ``/<its name>``, its entrypoint, with the machine's zoneinfo (Go reads time zones
    from it)."""
    directory.mkdir(parents=True, exist_ok=True)
    busybox = _layer(_busybox)
    layers = {name: (busybox, entrypoint) for name, entrypoint in IMAGES.items()}
    for name, binary in (binaries or {}).items():
        layers[name] = (_layer(functools.partial(_binary, binary=binary)), [f"/{binary.name}"])
    lines = []
    for name, (layer, entrypoint) in layers.items():
        archive = directory / f"{name.rsplit('/', 1)[1].replace(':', '-')}.tar"
        archive.write_bytes(_docker_archive(name, entrypoint, layer))
        lines.append(f"{name} {archive}\n")
    listing = directory / "images.txt"
    listing.write_text("".join(lines))
    return listing


def _layer(fill: Callable[[tarfile.TarFile], None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        fill(tar)
    return buffer.getvalue()


def _busybox(tar: tarfile.TarFile) -> None:
    """The lab's own images' layer: busybox, ``sh`` linked to it, ``/www`` and ``/tmp``."""
    for name, mode in (("bin", 0o755), ("www", 0o755), ("tmp", 0o1777)):
        tar.addfile(_entry(name, tarfile.DIRTYPE, mode))
    _add_file(tar, "bin/busybox", BUSYBOX)
    link = _entry("bin/sh", tarfile.SYMTYPE, 0o777)
    link.linkname = "busybox"
    tar.addfile(link)


def _binary(tar: tarfile.TarFile, binary: Path) -> None:
    """A built workload's layer: its binary at the root, the machine's zoneinfo."""
    _add_file(tar, binary.name, binary)
    if ZONEINFO.is_dir():
        tar.add(ZONEINFO, ZONEINFO.relative_to("/").as_posix(),
                filter=lambda entry: _entry(entry.name, entry.type, entry.mode, entry))


def _add_file(tar: tarfile.TarFile, name: str, source: Path) -> None:
    data = source.read_bytes()
    entry = _entry(name, tarfile.REGTYPE, 0o755)
    entry.size = len(data)
    tar.addfile(entry, io.BytesIO(data))


def _entry(name: str, kind: bytes, mode: int, entry: tarfile.TarInfo | None = None) -> tarfile.TarInfo:
    """A root-owned entry of mtime 0 (``entry``, from the machine, made so): the same bytes at every build."""
    entry = entry or tarfile.TarInfo(name)
    entry.type, entry.mode, entry.mtime = kind, mode, 0
    entry.uid = entry.gid = 0
    entry.uname = entry.gname = ""
    return entry


def _docker_archive(name: str, entrypoint: list[str], layer: bytes) -> bytes:
    """The archive ``docker save`` writes: manifest.json, the image config and its layer."""
    layer_id = hashlib.sha256(layer).hexdigest()
    architecture = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    config = json.dumps({
        "architecture": architecture, "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": entrypoint, "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "chaosali lab: Debian's busybox-static"}],
    }, sort_keys=True).encode()
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [name], "Layers": [f"{layer_id}/layer.tar"]}]).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, data in ((config_name, config), (f"{layer_id}/layer.tar", layer), ("manifest.json", manifest)):
            entry = _entry(path, tarfile.REGTYPE, 0o644)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


# -- configuration files -------------------------------------------------------------------------


def containerd_config() -> str:
    """containerd's configuration: the usual paths (private to each host), runc with cgroupfs, the
    lab's pause image, Debian's CNI plugins."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return "\n".join([
        "version = 2",
        'root = "/var/lib/containerd"',
        'state = "/run/containerd"',
        "[grpc]",
        '  address = "/run/containerd/containerd.sock"',
        # not the machine's /opt: everything of a host stays in its own directories
        '[plugins."io.containerd.internal.v1.opt"]',
        '  path = "/var/lib/containerd/opt"',
        f"[{cri}]",
        f'  sandbox_image = "{PAUSE_IMAGE}"',
        # root here lacks CAP_SYS_RESOURCE: runc cannot lower a sandbox's oom_score_adj to -998
        "  restrict_oom_score_adj = true",
        f"[{cri}.containerd]",
        '  snapshotter = "overlayfs"',
        '  default_runtime_name = "runc"',
        f"[{cri}.containerd.runtimes.runc]",
        '  runtime_type = "io.containerd.runc.v2"',
        f"[{cri}.containerd.runtimes.runc.options]",
        "  SystemdCgroup = false",
        f"[{cri}.cni]",
        '  bin_dir = "/usr/lib/cni"',
        '  conf_dir = "/etc/cni/net.d"',
        "",
    ])


def cni_config(subnet: str) -> str:
    """A bridge with host-local addresses from ``subnet``, masquerading what leaves it."""
    return json.dumps({
        "cniVersion": "0.4.0", "name": "lab",
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": True, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }, indent=2)


def kubelet_config(namespace: str, ca_file: Path, lease_seconds: int, serving: tuple[Path, Path]) -> str:
    """The kubelet's configuration for the node of lab host ``namespace``; ``serving``: the
    certificate and key of its port 10250, signed by the lab's CA so that clients such as
    Prometheus verify it."""
    return yaml.safe_dump({
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs", "cgroupRoot": cgroup_parent(namespace),
        # this machine: swap may be on, cgroups are v1 (with a v2 "unified" beside them)
        "failSwapOn": False, "failCgroupV1": False,
        "containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                           "x509": {"clientCAFile": str(ca_file)}},
        "authorization": {"mode": "AlwaysAllow"},
        "readOnlyPort": 0, "tlsCertFile": str(serving[0]), "tlsPrivateKeyFile": str(serving[1]),
        "resolvConf": "",  # a lab host has no name server
        # the lab's CoreDNS (dns.py), as kubeadm's kubelets are configured for theirs
        "clusterDNS": [dns.CLUSTER_IP], "clusterDomain": dns.DOMAIN,
        "nodeLeaseDurationSeconds": lease_seconds,
        # nothing can be pulled again: never collect the imported images
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "podLogsDir": "/var/log/pods",
    }, sort_keys=False)


def kube_proxy_config(host_name: str) -> str:
    """kube-proxy in iptables mode, in its host's network namespace."""
    return yaml.safe_dump({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "mode": "iptables", "hostnameOverride": host_name, "clusterCIDR": POD_CIDR,
        "clientConnection": {"kubeconfig": "/etc/kubernetes/kube-proxy.conf"},
        "metricsBindAddress": "127.0.0.1:10249", "healthzBindAddress": "127.0.0.1:10256",
        # the conntrack table's limits and timeouts are the machine's, not a lab host's: leave them
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }, sort_keys=False)


def pod_logs(host_dir: Path) -> dict[str, str]:
    """What the containers of each pod of a real worker wrote (the kubelet's CRI logs, a container's
    restarts in order), by ``<namespace>_<pod>``, as ``podrunner.pod_logs`` tells a kwok node's."""
    logs: dict[str, str] = {}
    for pod in sorted((host_dir / "fs/var/log/pods").glob("*_*_*")):
        name = pod.name.rsplit("_", 1)[0]
        logs[name] = "".join(path.read_text(errors="replace") for path in
                             sorted(pod.glob("*/*.log"), key=lambda path: (path.parent.name, int(path.stem))))
    return logs


# -- cleanup -------------------------------------------------------------------------------------


def remove_cgroups(prefix: str, timeout: float = 10.0) -> list[str]:
    """Remove every cgroup named ``<prefix>*`` at the top of each hierarchy, deepest first; a cgroup
    whose last process is still being reaped is retried until ``timeout``. Returns what is left."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for top in sorted(path for hierarchy in _hierarchies() for path in hierarchy.glob(f"{prefix}*")
                          if path.is_dir()):
            for directory in sorted((d for d, _, _ in os.walk(top)), key=lambda d: d.count("/"), reverse=True):
                try:
                    os.rmdir(directory)
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(directory)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _hierarchies() -> list[Path]:
    """The machine's cgroup hierarchies: each v1 controller's, the v2 one, or the unified root."""
    if not CGROUP_ROOT.is_dir() or (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT]
    return [path for path in CGROUP_ROOT.iterdir() if path.is_dir() and not path.is_symlink()]
