"""The hosts lab: Linux hosts as network namespaces on a bridge, each with a real sshd.

Each host runs under ``unshare --mount --uts --pid`` inside its network namespace: its own
hostname, process table (pid 1 is the host's init, ``sh/init.sh``) and private copies of the files
that faults edit, bind-mounted over the shared root filesystem. Everything the lab creates carries
its name (namespaces ``<name>-<host>``, bridge ``<name>-br``, veths ``<name>-v<i>``) and lives in
its address range, so ``down`` removes exactly that.

Each host has CPUs of its own: its boot loop joins the cgroup ``/<namespace>`` of the ``cpuset``,
``cpu`` and ``cpuacct`` hierarchies (cgroups v1) before anything of the host starts, so its services,
its kubelet's pods (their cgroup root is the same directory) and whatever runs over its SSH
sessions inherit them. Workers (and plain hosts) get one CPU each, round robin over the machine's
CPUs; masters, the load balancer and the monitoring host share every CPU (:func:`cpus_for`). A
host's ``/proc/stat``, ``/proc/cpuinfo`` and ``/proc/loadavg`` are the lab's lxcfs's (a FUSE file
system that production container hosts use for the same purpose): the host's CPUs only, and their
time as the host's own processes used it, so that its node exporter, ``top`` or ``nproc`` see the
host rather than the machine.

This module knows hosts and their services only; ``cluster.py`` builds a Kubernetes cluster on it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from chaosali.core import private
from chaosali.core.fanout import fan_out
from chaosali.host.ssh import Host, SSHSettings, run_script
from chaosali.lab.nodes import CGROUP_ROOT, remove_cgroups

__all__ = ["DEFAULT_STATE_DIR", "Lab", "LabError", "LabHost", "HostServices", "script", "SUDO_USER",
           "PASSWORD_SUDO_USER", "cpus_for", "CPU_CONTROLLERS"]

logger = logging.getLogger("chaostoolkit")

DEFAULT_STATE_DIR = Path("/var/lib/chaosali-lab")
_NAME = re.compile(r"[a-z][a-z0-9]{0,9}", re.ASCII)
# The non-root users of every lab host, as real fleets have them: (name, uid, sudoers rule). Both
# log in with the lab's key; the first has passwordless sudo, the second's sudo asks for a password
# (it has none: /etc/shadow gives it "*"), so only a drill run as root or the first can act.
SUDO_USER = "drill"
PASSWORD_SUDO_USER = "drill-pw"
_USERS = ((SUDO_USER, 2901, "ALL=(ALL:ALL) NOPASSWD: ALL"), (PASSWORD_SUDO_USER, 2902, "ALL=(ALL:ALL) ALL"))
#: The cgroup v1 hierarchies a host's boot loop joins: its CPUs, and the accounting of their use.
CPU_CONTROLLERS = ("cpuset", "cpu", "cpuacct")
# the roles whose hosts get a CPU of their own; the others share every CPU of the machine
_OWN_CPU_ROLES = ("worker", "host")


class LabError(RuntimeError):
    """The lab cannot be brought up or down; the message says what is needed."""


@dataclass
class LabHost:
    name: str
    address: str
    namespace: str
    role: str = "host"
    cpus: str = ""  # its cpuset's CPU list ("0", "0,1"); empty: the machine's, unplaced

    def as_target(self) -> dict:
        return {"name": self.name, "address": self.address}


# The services a host runs besides sshd, by name: the argv of each (see Lab.start).
HostServices = Callable[[LabHost], dict[str, list[str]]]


def script(name: str) -> str:
    """One of the lab's shell scripts (package data under ``sh/``)."""
    return (files(__package__) / "sh" / name).read_text(encoding="utf-8")


def cpus_for(roles: list[str], machine: list[int]) -> list[str]:
    """The CPU list of each host of ``roles`` (in order) on a machine of CPUs ``machine``: a worker
    or plain host gets one CPU, round robin, so that a load on one does not slow another; masters,
    the load balancer and the monitoring share every CPU, so that a worker's load leaves them the
    rest of the machine."""
    every = ",".join(map(str, machine))
    own = iter(range(len(roles)))
    return [str(machine[next(own) % len(machine)]) if role in _OWN_CPU_ROLES else every for role in roles]


@dataclass
class Lab:
    name: str = "chaosali"
    subnet: str = "10.213.0.0/24"
    state_root: Path = DEFAULT_STATE_DIR
    hosts: list[LabHost] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise LabError(f"lab name {self.name!r}: use 1-10 lower-case letters and digits, starting with a letter")
        try:
            network = ipaddress.ip_network(self.subnet)
        except ValueError:
            raise LabError(f"subnet {self.subnet!r} is not a CIDR such as 10.213.0.0/24") from None
        if network.version != 4 or network.num_addresses < 16:
            raise LabError(f"subnet {self.subnet!r} must be IPv4 with room for hosts (at most /28)")
        self.state_root = Path(self.state_root)

    # -- paths and names -------------------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        return self.state_root / self.name

    @property
    def bridge(self) -> str:
        return f"{self.name}-br"

    @property
    def gateway(self) -> str:
        return str(next(ipaddress.ip_network(self.subnet).hosts()))

    @property
    def key_path(self) -> Path:
        return self.state_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def tools(self) -> Path:
        """The lab's shell tools: boot.sh and init.sh run its hosts, labctl runs on them."""
        return self.state_dir / "bin"

    @property
    def labctl(self) -> Path:
        return self.tools / "labctl"

    @property
    def vars_path(self) -> Path:
        """Chaos Toolkit var file (``chaos run --var-file``) with the lab's configuration and secrets."""
        return self.state_dir / "vars.json"

    def host_dir(self, host: LabHost) -> Path:
        return self.state_dir / "hosts" / host.name

    @property
    def lxcfs_dir(self) -> Path:
        """Where the lab's lxcfs is mounted: each host's view of its own CPUs."""
        return self.state_dir / "lxcfs"

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def load(cls, name: str = "chaosali", state_root: Path = DEFAULT_STATE_DIR) -> Lab:
        """The lab as last brought up (its hosts), or an empty one of that name."""
        lab = cls(name=name, state_root=state_root)
        state = lab.state_dir / "state.json"
        if state.exists():
            data = json.loads(state.read_text())
            lab.subnet = data["subnet"]
            lab.hosts = [LabHost(**host) for host in data["hosts"]]
        return lab

    def up(self, hosts: int) -> None:
        """Create (or complete) a lab of ``hosts`` plain hosts; safe to call again with the same number."""
        self.place([("host", hosts)])
        self.start()
        self.write_vars()

    def place(self, roles: list[tuple[str, int]]) -> None:
        """Choose the hosts, ``number`` of each ``role`` (names ``<role><i>``, addresses, namespaces),
        and install the lab's key and tools. A lab that is up keeps its hosts: another shape is refused."""
        _require_root()
        count = sum(number for _, number in roles)
        network = ipaddress.ip_network(self.subnet)
        if count < 1 or count + 10 > network.num_addresses - 2:
            raise LabError(f"{count} hosts do not fit in {self.subnet}: use 1 to {network.num_addresses - 12}")
        addresses = iter(list(network.hosts())[10:])
        placed = [(role, i) for role, number in roles for i in range(1, number + 1)]
        cpus = cpus_for([role for role, _ in placed], sorted(os.sched_getaffinity(0)))
        wanted = [LabHost(f"{role}{i}", str(next(addresses)), f"{self.name}-{role}{i}", role, cpu)
                  for (role, i), cpu in zip(placed, cpus)]
        if self.hosts and [h.name for h in self.hosts] != [h.name for h in wanted]:
            raise LabError(
                f"lab {self.name!r} is up with {len(self.hosts)} hosts "
                f"({', '.join(h.name for h in self.hosts)}); run 'chaosali lab down' first to change that"
            )
        self.hosts = wanted
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        self._write_state()
        self._client_key()
        self._install_tools()

    def start(self, services: HostServices = lambda host: {}) -> None:
        """Boot every placed host that is not running, with sshd and its ``services``, and wait for sshd."""
        self._bridge()
        self._lxcfs()
        for index, host in enumerate(self.hosts, start=1):
            self._host(index, host, services(host))
        self._wait_for_sshd()
        self.known_hosts.write_text(
            "".join(f"{h.address} {(self.host_dir(h) / 'ssh_host_ed25519_key.pub').read_text()}" for h in self.hosts)
        )

    def route(self, routes: dict[str, str]) -> None:
        """Make every host reach each destination network through the host of that address (pod
        networks behind their node); routes live in the hosts' namespaces, and go with them."""
        for host in self.hosts:
            for destination, via in routes.items():
                if via != host.address:
                    _run(["ip", "netns", "exec", host.namespace, "ip", "route", "replace", destination, "via", via])

    def down(self) -> None:
        """Remove every namespace, process, link and file of this lab, and nothing else."""
        _require_root()
        for namespace in _namespaces():
            if namespace.startswith(f"{self.name}-"):
                _kill_namespace(namespace)
                _run(["ip", "netns", "del", namespace])
        for veth in _links(f"{self.name}-v"):  # its namespace may still be pinned somewhere
            # quietly: the kernel may be removing it with its namespace right now
            subprocess.run(["ip", "link", "del", veth], capture_output=True)
        self._stop_lxcfs()
        if _link_exists(self.bridge):
            _run(["ip", "link", "del", self.bridge])
        # the cgroups of real nodes' kubelets (nodes.cgroup_parent), once their processes are gone
        left = remove_cgroups(f"{self.name}-")
        if left:
            raise LabError(f"cgroups still in use after lab {self.name}'s processes were killed: {', '.join(left)}")
        # the private kubeconfig directories its hosts' processes made in this machine's /tmp: killed
        # with their host, they ran no exit handler (their owner locks are free now)
        private.remove_orphans()
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.hosts = []

    def status(self) -> dict:
        namespaces = set(_namespaces())
        return {
            "name": self.name,
            "subnet": self.subnet,
            "bridge": self.bridge if _link_exists(self.bridge) else None,
            "vars_file": str(self.vars_path) if self.vars_path.exists() else None,
            "hosts": [
                {
                    **asdict(host),
                    "namespace_exists": host.namespace in namespaces,
                    "sshd": _tcp_open(host.address, 22),
                }
                for host in self.hosts
            ],
        }

    def services(self) -> dict[str, dict[str, str]]:
        """Per host, each service and its state as ``labctl`` reports it (or why the host is unreachable)."""
        settings = SSHSettings(key_path=str(self.key_path), known_hosts=str(self.known_hosts),
                               connect_timeout=2, command_timeout=5)
        hosts = {Host(h.address, name=h.name): h.name for h in self.hosts}
        command = f"{shlex.quote(str(self.labctl))} services"
        results, errors = fan_out(list(hosts), lambda host: run_script(host, command, settings))
        services = {hosts[h]: dict(line.split(" ", 1) for line in out.splitlines()) for h, out in results.items()}
        services.update({hosts[h]: {"unreachable": reason} for h, reason in errors.items()})
        return services

    def write_vars(self, configuration: dict | None = None, secrets: dict | None = None) -> None:
        """The var file of experiments run in the lab: its hosts and SSH access, ``configuration``
        and more ``secrets`` scopes."""
        variables = {
            "configuration": {
                "lab_hosts": [host.as_target() for host in self.hosts],
                "ssh_known_hosts": str(self.known_hosts),
                # lab hosts have no systemd: their services answer to labctl
                "service_command": f"{self.labctl} {{action}} {{service}}",
                "reboot_command": f"{self.labctl} reboot",
                # the NFQUEUE delayer's Python where the kernel has no sch_netem: the hosts share this
                # machine's files, and the Python that runs the lab has fnfqueue (scripts/setup)
                "delay_python": sys.executable,
                **(configuration or {}),
            },
            # one scope per way of logging in, for an experiment (or a --var-file) to pick
            "secrets": {
                "ssh": {"user": "root", "key_path": str(self.key_path)},
                "ssh_sudo": {"user": SUDO_USER, "key_path": str(self.key_path)},
                "ssh_password_sudo": {"user": PASSWORD_SUDO_USER, "key_path": str(self.key_path)},
                **(secrets or {}),
            },
        }
        private.write(self.vars_path, json.dumps(variables, indent=2))  # its secrets: a key's path, a password

    # -- pieces ------------------------------------------------------------------------------------

    def _write_state(self) -> None:
        state = {"subnet": self.subnet, "hosts": [asdict(host) for host in self.hosts]}
        (self.state_dir / "state.json").write_text(json.dumps(state, indent=2))

    def _install_tools(self) -> None:
        self.tools.mkdir(exist_ok=True)
        for name, path in (("boot.sh", self.tools / "boot.sh"), ("init.sh", self.tools / "init.sh"),
                           ("kubelet.sh", self.tools / "kubelet.sh"), ("labctl.sh", self.labctl)):
            path.write_text(script(name))
            path.chmod(0o755)

    def _client_key(self) -> None:
        if not self.key_path.exists():
            _write_keypair(self.key_path)

    def _bridge(self) -> None:
        if not _link_exists(self.bridge):
            _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        prefix = ipaddress.ip_network(self.subnet).prefixlen
        _run(["ip", "addr", "replace", f"{self.gateway}/{prefix}", "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])

    def _host(self, index: int, host: LabHost, services: dict[str, list[str]]) -> None:
        directory = self.host_dir(host)
        directory.mkdir(parents=True, exist_ok=True)
        if not (directory / "ssh_host_ed25519_key").exists():
            _write_keypair(directory / "ssh_host_ed25519_key")
        shutil.copyfile(self.key_path.with_suffix(".pub"), directory / "authorized_keys")
        (directory / "fs" / "root").mkdir(parents=True, exist_ok=True)
        (directory / "passwd").write_text(_passwd(directory / "fs" / "root"))
        private.write(directory / "shadow", "".join(f"{line.split(':')[0]}:*:19000:0:99999:7:::\n"
                                                  for line in (directory / "passwd").read_text().splitlines()))
        (directory / "shadow").chmod(0o600)
        sudoers = directory / "sudoers.d"
        sudoers.mkdir(mode=0o755, exist_ok=True)
        for user, uid, rule in _USERS:  # /home is the host's own fs/home (init.sh)
            ssh_dir = directory / "fs" / "home" / user / ".ssh"
            ssh_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.key_path.with_suffix(".pub"), ssh_dir / "authorized_keys")
            for path in (ssh_dir.parent, ssh_dir, ssh_dir / "authorized_keys"):
                os.chown(path, uid, uid)
            (sudoers / f"lab-{user}").write_text(f"{user} {rule}\n")
            (sudoers / f"lab-{user}").chmod(0o440)
        # the lab's names only, and no name server: lookups answer at once instead of timing out
        (directory / "hosts").write_text(
            "127.0.0.1 localhost\n" + "".join(f"{h.address} {h.name}\n" for h in self.hosts)
        )
        (directory / "resolv.conf").write_text("# a lab host: no name server\noptions timeout:1 attempts:1\n")
        (directory / "sshd_config").write_text(_sshd_config(directory))
        services = {"sshd": ["/usr/sbin/sshd", "-D", "-f", str(directory / "sshd_config"), "-E",
                             str(directory / "sshd.log")], **services}
        shutil.rmtree(directory / "services", ignore_errors=True)
        (directory / "services").mkdir()
        for name, argv in services.items():
            (directory / "services" / f"{name}.sh").write_text(f"exec {shlex.join(argv)}\n")

        if host.namespace not in _namespaces():
            _run(["ip", "netns", "add", host.namespace], hint="creating network namespaces needs CAP_SYS_ADMIN")
        veth = f"{self.name}-v{index}"
        if not _link_exists(veth):
            _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", host.namespace])
            _run(["ip", "link", "set", veth, "master", self.bridge, "up"])
        prefix = ipaddress.ip_network(self.subnet).prefixlen
        netns = ["ip", "netns", "exec", host.namespace]
        _run(netns + ["ip", "addr", "replace", f"{host.address}/{prefix}", "dev", "eth0"])
        _run(netns + ["ip", "link", "set", "lo", "up"])
        _run(netns + ["ip", "link", "set", "eth0", "up"])
        _run(netns + ["ip", "route", "replace", "default", "via", self.gateway])
        if not _namespace_pids(host.namespace):
            self.boot(host)

    def boot(self, host: LabHost) -> None:
        """Start the host's boot loop (boot.sh) in the host's cgroup: init.sh as pid 1 of the host,
        again after each reboot."""
        directory = self.host_dir(host)
        lxcfs = self.lxcfs_dir if (self.lxcfs_dir / "proc" / "stat").exists() else ""
        environment = {**os.environ, "LAB_HOSTNAME": host.name, "LAB_HOST_DIR": str(directory),
                       "LAB_CGROUP": self._cgroup(host), "LAB_LXCFS": str(lxcfs)}
        with open(directory / "init.log", "ab") as log:
            # nsenter, not `ip netns exec`: the latter gives the loop a mount namespace that is a
            # slave of the root one, so every namespace made later would be pinned by it, and live on
            # after its `ip netns del`
            subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{host.namespace}", "sh", str(self.tools / "boot.sh")],
                env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )

    def _cgroup(self, host: LabHost) -> str:
        """Make the host's cgroup (named like its namespace, as its kubelet's cgroup root) under each
        of :data:`CPU_CONTROLLERS`, with its CPUs; return its name, or "" where the machine has no
        cgroup v1 cpuset (the host then shares every CPU)."""
        if not host.cpus or not (CGROUP_ROOT / "cpuset" / "cpuset.cpus").exists():
            return ""
        for controller in CPU_CONTROLLERS:
            (CGROUP_ROOT / controller / host.namespace).mkdir(exist_ok=True)
        cpuset = CGROUP_ROOT / "cpuset" / host.namespace
        (cpuset / "cpuset.mems").write_text((CGROUP_ROOT / "cpuset" / "cpuset.mems").read_text())
        (cpuset / "cpuset.cpus").write_text(host.cpus)
        return host.namespace

    def _lxcfs(self) -> None:
        """Start the lab's lxcfs (once): each host's /proc/stat, cpuinfo and loadavg then tell its own
        CPUs. Without lxcfs or FUSE the hosts read the machine's, said once."""
        mount = self.lxcfs_dir
        if (mount / "proc" / "stat").exists():
            return
        if not shutil.which("lxcfs") or not Path("/dev/fuse").exists():
            logger.warning("lab %s: no lxcfs (apt-get install lxcfs) or no /dev/fuse: each host's /proc/stat is "
                           "the machine's, and its node exporter cannot tell its own CPUs", self.name)
            return
        mount.mkdir(exist_ok=True)
        # in the foreground of a session of its own, as the hosts' boot loops are; --enable-loadavg: a
        # load average per host, counted from its cgroup's tasks
        with open(self.state_dir / "lxcfs.log", "ab") as log:
            subprocess.Popen(["lxcfs", "--foreground", "--enable-loadavg", f"--pidfile={self.state_dir / 'lxcfs.pid'}",
                              str(mount)], stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 10
        while not (mount / "proc" / "stat").exists():
            if time.monotonic() > deadline:
                raise LabError(f"lxcfs did not mount {mount} within 10 s")
            time.sleep(0.05)

    def _stop_lxcfs(self) -> None:
        """Stop the lab's lxcfs once its hosts are gone, and make sure nothing is mounted on its
        directory: the state directory is removed next, and lxcfs's tree holds cgroups."""
        pidfile = self.state_dir / "lxcfs.pid"
        pid = pidfile.read_text().strip() if pidfile.exists() else ""
        if pid.isdigit():
            try:
                os.kill(int(pid), signal.SIGTERM)
            except ProcessLookupError:
                pass
        for _ in range(100):
            alive = pid.isdigit() and Path(f"/proc/{pid}/cmdline").exists() and Path(f"/proc/{pid}/cmdline").read_bytes()
            if not alive and not os.path.ismount(self.lxcfs_dir):
                return
            if not alive:
                subprocess.run(["umount", "-l", str(self.lxcfs_dir)], capture_output=True)
            time.sleep(0.05)
        raise LabError(f"lxcfs (pid {pid or 'unknown'}) still runs or {self.lxcfs_dir} is still mounted: "
                       f"stop it and umount -l {self.lxcfs_dir}, then run lab down again")

    def _wait_for_sshd(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.hosts)
        while pending and time.monotonic() < deadline:
            pending = [host for host in pending if not _tcp_open(host.address, 22)]
            if pending:
                time.sleep(0.05)
        if pending:
            raise LabError(
                "sshd did not start on " + ", ".join(h.name for h in pending)
                + f"; see {self.state_dir}/hosts/<host>/init.log and sshd.log"
            )


def _require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, bridges, mounts): run it as root or with sudo")
    missing = [tool for tool in ("ip", "unshare", "iptables", "/usr/sbin/sshd", "sudo") if not shutil.which(tool)]
    if missing:
        raise LabError(
            f"{', '.join(missing)} not found on PATH ({os.environ.get('PATH', '')}): install them with "
            "apt-get install -y iproute2 util-linux iptables openssh-server sudo, or add /usr/sbin to PATH"
        )


def _run(command: list[str], hint: str = "") -> str:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise LabError(f"{' '.join(command)} failed: {result.stderr.strip()}" + (f" ({hint})" if hint else ""))
    return result.stdout


def _namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _namespace_pids(namespace: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def _kill_namespace(namespace: str) -> None:
    for _ in range(50):
        pids = _namespace_pids(namespace)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def _links(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = [line.split(": ")[1].split("@")[0] for line in out.splitlines() if ": " in line]
    return [name for name in names if name.startswith(prefix)]


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def _tcp_open(address: str, port: int, timeout: float = 0.5) -> bool:
    try:
        socket.create_connection((address, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _write_keypair(path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    private.write(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                          serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path.with_suffix(".pub").write_text(public.decode() + "\n")


def _passwd(home: Path) -> str:
    # root logs in to /bin/sh with its own home: no login profile (pyenv init) on every command
    ours = {user for user, _, _ in _USERS}
    lines = []
    for line in Path("/etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == "root":
            fields[5], fields[6] = str(home), "/bin/sh"
        if fields[0] not in ours:
            lines.append(":".join(fields))
    lines += [f"{user}:x:{uid}:{uid}:chaosali lab:/home/{user}:/bin/sh" for user, uid, _ in _USERS]
    return "\n".join(lines) + "\n"


def _sshd_config(directory: Path) -> str:
    return "\n".join(
        [
            "Port 22",
            f"HostKey {directory / 'ssh_host_ed25519_key'}",
            "PidFile /run/sshd.pid",
            "AuthorizedKeysFile .ssh/authorized_keys",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "UseDNS no",
            "MaxStartups 100:30:200",
            "MaxSessions 50",
            # root's key file lies in the lab's private state (mode 0700): only root can read it there
            "Match User root",
            f"    AuthorizedKeysFile {directory / 'authorized_keys'}",
            "",
        ]
    )
