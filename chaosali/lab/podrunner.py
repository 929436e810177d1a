"""The lab's kubelet for the pods that run for real: the built binary runs for each such pod bound to a host.

kwok stands in for every lab node's kubelet but runs no container. This service runs on each node
host beside it (supervised by the host's init, ``sh/init.sh``) and does, for the pods of
:data:`WORKLOADS` (the Deployment that ``deploy_kube_monkey`` creates, the cluster DNS of
``dns.py``), what a kubelet does:

- it mounts the pod's volumes (its ConfigMaps, emptyDirs) and the service account's token (a
  TokenRequest bound to the pod), the cluster's CA and namespace under
  ``/var/run/secrets/kubernetes.io/serviceaccount``, in a private mount namespace of the process,
  so nothing of it is seen elsewhere on the host;
- it runs the container's args with the workload's built binary in place of the image, as the container's
  user, with ``KUBERNETES_SERVICE_HOST``/``_PORT`` and the container's env, and restarts it when
  it exits (restartPolicy Always, with a back-off);
- when the pod is deleted it stops the process within the pod's grace period and only then
  deletes the pod for good (the lab's kwok leaves such pods to it), so the pod is gone only once
  its process is: ``remove_kube_monkey`` returns with nothing left running.

A pod runs in its host's network namespace: the lab has no pod network.

The process's output goes to ``<lab>/hosts/<host>/pods/<namespace>_<pod>.log`` (see
:func:`pod_logs`). Run as ``python -m chaosali.lab.podrunner`` by :class:`chaosali.lab.cluster.Cluster`.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from chaosali.cluster.api import new_api_client
from chaosali.core.markers import MANAGED_BY, MANAGED_BY_LABEL
from chaosali.kubemonkey import manifests as km
from chaosali.lab import dns

__all__ = ["WORKLOADS", "LOG_DIR", "pod_logs", "kwok_stages"]

logger = logging.getLogger("chaosali.lab.podrunner")

#: The pods this runner runs, by the binary that stands in for their image: each its pods' labels.
WORKLOADS = {
    km.NAME: {"app.kubernetes.io/name": km.NAME, MANAGED_BY_LABEL: MANAGED_BY},  # chaosali's kube-monkeys
    "coredns": dns.LABELS,  # the cluster DNS
}
#: Under a host's directory: one log per pod.
LOG_DIR = "pods"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
POLL_SECONDS = 1.0  # how soon a new pod starts; deletions wait for the runner anyway
TOKEN_SECONDS = 3600
MAX_BACKOFF_SECONDS = 30.0
# what every process of a pod gets besides the container's env, as a container runtime gives it
BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

# Mount each "SOURCE TARGET MODE" triple, up to "--", privately, then exec the rest: run by
# `unshare --mount --propagation private`, so the mounts die with the process.
_MOUNT_AND_EXEC = """set -e
while [ "$1" != -- ]; do
    mkdir -p "$2"
    mount --bind "$1" "$2"
    [ "$3" = rw ] || mount -o remount,bind,ro "$2"
    shift 3
done
shift
exec "$@"
"""


def kwok_stages(stages: list[dict], binaries: list[str]) -> list[dict]:
    """kwok's pod stages with the final deletion of the pods the runner runs (those of
    ``binaries``) left to it: kwok would delete such a pod at once, before its process stopped."""
    ours = " or ".join(
        "(" + " and ".join(f'.metadata.labels["{key}"] == "{value}"' for key, value in WORKLOADS[name].items()) + ")"
        for name in binaries)
    changed = []
    for stage in stages:
        if stage["spec"]["next"].get("delete"):
            stage = {**stage, "spec": {**stage["spec"], "selector": {"matchExpressions": [
                *stage["spec"]["selector"].get("matchExpressions", []),
                {"key": ours, "operator": "NotIn", "values": ["true"]},
            ]}}}
        changed.append(stage)
    return changed


def pod_logs(host_dir: Path) -> dict[str, str]:
    """The output of each pod this host has run, by ``<namespace>_<pod>``."""
    return {path.stem: path.read_text(errors="replace") for path in sorted((host_dir / LOG_DIR).glob("*.log"))}


@dataclass
class _Running:
    """One pod's process, and when to (re)start it and renew its token."""

    pod: k8s.V1Pod
    binary: str
    directory: Path
    process: subprocess.Popen | None = None
    failures: int = 0
    start_at: float = 0.0
    token_due: float = 0.0
    mounts: list[tuple[str, str, str]] = field(default_factory=list)


class Runner:
    """The pods of one node: polled from the API, each run, restarted, or stopped and deleted."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.binaries = dict(item.split("=", 1) for item in args.binary)
        self.api = new_api_client({"kubeconfig_path": args.kubeconfig}, retries=0)
        self.core = k8s.CoreV1Api(self.api)
        self.pods: dict[str, _Running] = {}
        self.stopping = False

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        logger.info("running the pods bound to node %s with %s", self.args.node, self.binaries)
        try:
            while not self.stopping:
                try:
                    self.sync()
                except (ApiException, HTTPError, OSError) as error:  # the API may be cut off: keep what runs
                    detail = f"{error.status} {error.reason}" if isinstance(error, ApiException) else error
                    logger.warning("cannot sync pods: %s", detail)
                time.sleep(POLL_SECONDS)
        finally:
            for uid in list(self.pods):
                self.stop(uid)

    def sync(self) -> None:
        found = self.core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={self.args.node}", _request_timeout=5).items
        current = {pod.metadata.uid: (pod, binary) for pod in found if (binary := self.binary_of(pod))}
        for uid in list(self.pods):
            if uid not in current:
                self.stop(uid)
        for uid, (pod, binary) in current.items():
            if pod.metadata.deletion_timestamp:
                if uid in self.pods:
                    self.stop(uid, pod.metadata.deletion_grace_period_seconds)
                self.finish_deletion(pod)
            else:
                self.keep_running(self.pods.setdefault(uid, _Running(pod, binary, Path(self.args.pods_dir) / uid)))

    def binary_of(self, pod: k8s.V1Pod) -> str | None:
        """The workload a pod belongs to, if this runner has its binary."""
        labels = pod.metadata.labels or {}
        return next((name for name in self.binaries
                     if all(labels.get(key) == value for key, value in WORKLOADS[name].items())), None)

    def keep_running(self, running: _Running) -> None:
        now = time.monotonic()
        if running.process and running.process.poll() is not None:
            code = running.process.returncode
            running.failures += 1
            backoff = min(MAX_BACKOFF_SECONDS, 2.0 ** running.failures)
            logger.warning("%s exited with status %s: restarting in %.0f s", self.name(running.pod), code, backoff)
            running.process, running.start_at = None, now + backoff
        if now >= running.token_due:
            self.write_token(running)
        if running.process is None and now >= running.start_at:
            self.start(running)

    def start(self, running: _Running) -> None:
        pod = running.pod
        container = pod.spec.containers[0]
        binary = Path(self.binaries[running.binary])
        image = running.directory / "image"
        if not running.mounts:
            # the image's binary, mounted where the container's user can reach it (the cache is
            # root's); not copied: the host's /var/lib/kubelet is a small disk of its own
            running.mounts = [(str(binary.parent), str(image), "ro"), *self.volumes(running, container)]
        security = container.security_context or k8s.V1SecurityContext()
        pod_security = pod.spec.security_context or k8s.V1PodSecurityContext()
        uid = security.run_as_user if security.run_as_user is not None else (pod_security.run_as_user or 0)
        gid = security.run_as_group if security.run_as_group is not None else (pod_security.run_as_group or 0)
        env = {**BASE_ENV, "HOSTNAME": pod.metadata.name,
               "KUBERNETES_SERVICE_HOST": self.args.api_host, "KUBERNETES_SERVICE_PORT": str(self.args.api_port),
               **{e.name: e.value or "" for e in container.env or [] if e.value_from is None}}
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _MOUNT_AND_EXEC, "sh",
                *(part for mount in running.mounts for part in mount), "--",
                # --pdeathsig: the process dies with this runner, even if the runner is killed
                "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--pdeathsig=KILL", "--",
                str(image / binary.name), *(container.args or [])]
        log = Path(self.args.log_dir) / f"{pod.metadata.namespace}_{pod.metadata.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as output:
            output.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} runner: starting "
                         f"{running.binary} {' '.join(container.args or [])}\n".encode())
            output.flush()
            running.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=output,
                                               stderr=subprocess.STDOUT)
        logger.info("%s started (pid %d)", self.name(pod), running.process.pid)

    def volumes(self, running: _Running, container: k8s.V1Container) -> list[tuple[str, str, str]]:
        """The pod's volumes on this host, as (source, mount path, ro|rw) for the container."""
        pod = running.pod
        sources = {}
        for volume in pod.spec.volumes or []:
            path = running.directory / "volumes" / volume.name
            path.mkdir(parents=True, exist_ok=True)
            if volume.config_map:
                config_map = self.core.read_namespaced_config_map(volume.config_map.name, pod.metadata.namespace,
                                                                  _request_timeout=5)
                for key, value in (config_map.data or {}).items():
                    (path / key).write_text(value)
            elif volume.empty_dir:
                path.chmod(0o777)  # as a kubelet makes it: writable by the container's user
            else:
                continue  # a volume none of the workloads uses: a lab kubelet need not know it
            sources[volume.name] = path
        mounts = [(str(sources[m.name]), m.mount_path, "ro" if m.read_only else "rw")
                  for m in container.volume_mounts or [] if m.name in sources]
        if pod.spec.automount_service_account_token is not False:
            mounts.append((str(running.directory / "serviceaccount"), SERVICE_ACCOUNT_DIR, "ro"))
        return mounts

    def write_token(self, running: _Running) -> None:
        """The service account's token bound to the pod (it dies with the pod), the CA and the
        namespace; renewed at half its life, written by rename so that a reader never sees half."""
        pod = running.pod
        directory = running.directory / "serviceaccount"
        directory.mkdir(parents=True, exist_ok=True)
        token = self.core.create_namespaced_service_account_token(
            pod.spec.service_account_name or "default", pod.metadata.namespace,
            {"spec": {"expirationSeconds": TOKEN_SECONDS,
                      "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod.metadata.name,
                                         "uid": pod.metadata.uid}}},
            _request_timeout=5).status.token
        for name, text in (("token", token), ("ca.crt", Path(self.args.ca).read_text()),
                           ("namespace", pod.metadata.namespace)):
            temporary = directory / f".{name}.new"
            temporary.write_text(text)
            temporary.chmod(0o644)
            os.replace(temporary, directory / name)
        running.token_due = time.monotonic() + TOKEN_SECONDS / 2

    def stop(self, uid: str, grace: int | None = None) -> None:
        running = self.pods.pop(uid)
        process = running.process
        if process and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=min(grace if grace is not None else 30, 30))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            logger.info("%s stopped", self.name(running.pod))
        shutil.rmtree(running.directory, ignore_errors=True)

    def finish_deletion(self, pod: k8s.V1Pod) -> None:
        """What a kubelet does once a deleted pod's containers are gone: delete it for good."""
        try:
            # in the body: a body's options override the query's
            self.core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace, body=k8s.V1DeleteOptions(
                grace_period_seconds=0, preconditions=k8s.V1Preconditions(uid=pod.metadata.uid)),
                _request_timeout=5)
        except ApiException as error:
            if error.status not in (404, 409):  # gone already, or another pod of that name
                raise

    @staticmethod
    def name(pod: k8s.V1Pod) -> str:
        return f"pod {pod.metadata.namespace}/{pod.metadata.name}"


def _binary(value: str) -> str:
    name, _, path = value.partition("=")
    if name not in WORKLOADS or not path:
        raise argparse.ArgumentTypeError(f"{value!r}: give NAME=PATH with NAME one of {', '.join(WORKLOADS)}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaosali.lab.podrunner", description=__doc__.split("\n")[0])
    parser.add_argument("--node", required=True, help="the node whose pods to run")
    parser.add_argument("--kubeconfig", required=True, help="the node's kubelet kubeconfig")
    parser.add_argument("--binary", action="append", required=True, type=_binary, metavar="NAME=PATH",
                        help=f"a workload's built binary ({', '.join(WORKLOADS)}); repeat for each")
    parser.add_argument("--api-host", required=True, help="KUBERNETES_SERVICE_HOST for the pods")
    parser.add_argument("--api-port", type=int, required=True, help="KUBERNETES_SERVICE_PORT for the pods")
    parser.add_argument("--ca", required=True, help="the cluster CA, the pods' ca.crt")
    parser.add_argument("--pods-dir", default="/var/lib/kubelet/pods", help="the pods' volumes on this host")
    parser.add_argument("--log-dir", required=True, help="one log per pod")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    Runner(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
