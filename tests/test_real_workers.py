"""Real worker nodes in the lab: a kubelet and containerd per worker, whose pods are real containers.

The tests run on the session's shared lab (the ``kube`` fixture: one kwok master, two real workers),
and change only what they restore; the proof that ``lab down`` leaves nothing brings up a lab of its
own (``REAL_LAB``), and takes it down.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
import tomllib
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from chaosali.host.actions import reboot_host, reconfigure_kubelet, restore_kubelet
from chaosali.core.errors import EndpointError
from chaosali.host.ssh import Host, run_script
from chaosali.lab import dns, k8sbuild, nodes
from chaosali.lab.cluster import DEMO_NAMESPACE, Cluster
from chaosali.lab.hosts import Lab, LabError, LabHost
from helpers import settings, wait_until

REAL_LAB = {"name": "csreal", "subnet": "10.239.0.0/24"}


# -- without a lab ---------------------------------------------------------------------------------


def test_the_images_are_docker_archives_of_busybox_with_their_names(tmp_path):
    listing = nodes.write_images(tmp_path)
    images = dict(line.split() for line in listing.read_text().splitlines())
    assert set(images) == {nodes.PAUSE_IMAGE, nodes.WEB_IMAGE}
    for name, archive in images.items():
        with tarfile.open(archive) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))
            assert manifest[0]["RepoTags"] == [name]
            image = json.load(tar.extractfile(manifest[0]["Config"]))
            assert image["config"]["Entrypoint"] == nodes.IMAGES[name]
            with tarfile.open(fileobj=tar.extractfile(manifest[0]["Layers"][0])) as layer:
                assert layer.extractfile("bin/busybox").read() == nodes.BUSYBOX.read_bytes()
                # the layer's digest is the one the config names (containerd checks it)
            digest = manifest[0]["Layers"][0].split("/")[0]
            assert image["rootfs"]["diff_ids"] == [f"sha256:{digest}"]
            assert hashlib.sha256(tar.extractfile(manifest[0]["Layers"][0]).read()).hexdigest() == digest


def test_containerd_and_the_kubelet_are_configured_for_a_lab_host():
    containerd = tomllib.loads(nodes.containerd_config())
    cri = containerd["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == nodes.PAUSE_IMAGE and cri["restrict_oom_score_adj"] is True
    assert cri["containerd"]["runtimes"]["runc"]["runtime_type"] == "io.containerd.runc.v2"
    assert cri["cni"] == {"bin_dir": "/usr/lib/cni", "conf_dir": "/etc/cni/net.d"}
    kubelet = yaml.safe_load(nodes.kubelet_config("lab-worker1", Path("/ca.crt"), 10, (Path("/k.crt"), Path("/k.key"))))
    assert kubelet["cgroupRoot"] == "/lab-worker1" and kubelet["cgroupDriver"] == "cgroupfs"
    assert (kubelet["tlsCertFile"], kubelet["tlsPrivateKeyFile"]) == ("/k.crt", "/k.key")
    cni = json.loads(nodes.cni_config(nodes.pod_subnet(2)))
    assert cni["plugins"][0]["ipam"]["ranges"] == [[{"subnet": "10.244.2.0/24"}]]


def test_auto_falls_back_to_kwok_naming_what_is_missing(monkeypatch, tmp_path):
    # a machine without runc (this one has it: the lookup is what a machine without it answers)
    monkeypatch.setattr(nodes.shutil, "which", lambda tool: None if tool == "runc" else f"/usr/bin/{tool}")
    said = []
    cluster = Cluster(Lab(name="csauto", state_root=tmp_path), progress=said.append, nodes="auto")
    assert cluster.node_kind == "kwok"
    assert said == ["kwok workers: real worker nodes need runc"]


def test_real_nodes_on_a_machine_without_runc_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(nodes.shutil, "which", lambda tool: None if tool == "runc" else f"/usr/bin/{tool}")
    monkeypatch.setattr("chaosali.lab.hosts._require_root", lambda: None)
    lab = Lab(name="csnorunc", state_root=tmp_path)
    lab.hosts = [LabHost("worker1", "10.0.0.1", "csnorunc-worker1", "worker")]
    with pytest.raises(LabError, match="real worker nodes need runc: run scripts/setup"):
        Cluster(lab, nodes="real").prepare()


# -- in a lab with real workers ---------------------------------------------------------------------


@pytest.fixture
def core(kube, real_containers: None):
    """The shared lab's API, where its workers are real (the test is skipped, saying why, where not)."""
    api = config.new_client_from_config(config_file=str(kube.admin_kubeconfig))
    yield client.CoreV1Api(api)
    api.close()


def on_host(lab: Lab, host: LabHost, command: str) -> str:
    return run_script(Host(host.address), command, settings(lab))


def worker(lab: Lab, name: str) -> LabHost:
    return next(h for h in lab.hosts if h.name == name)


def http_get(lab: Lab, address: str, port: int = nodes.WEB_PORT, source: LabHost | None = None) -> str | None:
    """The body served at ``address`` as seen from ``source`` (default: the master host), or None."""
    get = f"import urllib.request; print(urllib.request.urlopen('http://{address}:{port}/', timeout=2).read().decode())"
    result = subprocess.run(["ip", "netns", "exec", (source or lab.hosts[0]).namespace, sys.executable, "-c", get],
                            capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def test_workers_are_real_kubelets_on_containerd_and_the_master_stays_kwok(kube, core):
    found = {n.metadata.name: n for n in core.list_node().items}
    for name in ("worker1", "worker2"):
        info = found[name].status.node_info
        assert info.container_runtime_version.startswith("containerd://")
        assert info.kubelet_version == k8sbuild.KUBERNETES_VERSION
        assert found[name].metadata.labels["type"] == "real"
    assert found["master1"].metadata.labels["type"] == "kwok"
    processes = on_host(kube.lab, worker(kube.lab, "worker1"), "ps -e -o comm=").split()
    assert "kubelet" in processes and "containerd" in processes and "kwok" not in processes


def test_the_demo_web_runs_as_real_containers_serving_http(kube, core, web_spread):
    pods = [p for p in core.list_namespaced_pod(DEMO_NAMESPACE, label_selector="app=web").items
            if not p.metadata.deletion_timestamp]
    assert len(pods) == 2
    for pod in pods:
        assert pod.spec.containers[0].image == nodes.WEB_IMAGE
        assert pod.spec.containers[0].image_pull_policy == "Never"
        assert pod.spec.containers[0].readiness_probe.http_get.port == nodes.WEB_PORT
        assert all(c.ready for c in pod.status.container_statuses)
        # each replica answers with its own name, from its own pod address
        assert http_get(kube.lab, pod.status.pod_ip) == pod.metadata.name
        httpd = on_host(kube.lab, worker(kube.lab, pod.spec.node_name), "pgrep -f 'busybox httpd' || true").split()
        assert httpd, f"no httpd process on {pod.spec.node_name}"


def test_web_is_a_service_kube_proxy_balances_over_both_replicas(kube, core, web_spread):
    """The NodePort answers through either worker, from outside the cluster (this machine), and the
    ClusterIP from inside a worker; kube-proxy sends requests to both replicas, wherever they run."""
    replicas = {p.metadata.name for p in core.list_namespaced_pod(DEMO_NAMESPACE, label_selector="app=web").items
                if not p.metadata.deletion_timestamp}
    variables = json.loads(kube.lab.vars_path.read_text())["configuration"]
    for url in variables["web_urls"]:
        served = {urllib.request.urlopen(url, timeout=2).read().decode().strip() for _ in range(12)}
        assert served == replicas, url
    cluster_ip = core.read_namespaced_service("web", DEMO_NAMESPACE).spec.cluster_ip
    inside = worker(kube.lab, "worker2")
    served = set()
    for _ in range(12):
        served.add(http_get(kube.lab, cluster_ip, 80, inside))
    assert served == replicas


def test_a_reboot_of_a_real_worker_ends_its_containers_and_they_come_back(kube, core, web_spread):
    host = worker(kube.lab, "worker2")
    tasks = "ctr --address /run/containerd/containerd.sock -n k8s.io tasks ls -q"

    def web_container() -> str | None:
        """The ID of the ready web container on the host, as its kubelet reports it."""
        pods = core.list_namespaced_pod(DEMO_NAMESPACE, label_selector="app=web",
                                        field_selector=f"spec.nodeName={host.name}").items
        statuses = [c for p in pods for c in p.status.container_statuses or [] if c.ready and c.container_id]
        return statuses[0].container_id.split("//")[1] if statuses else None

    before = web_container()
    assert before and before in on_host(kube.lab, host, tasks).split()
    variables = json.loads(kube.lab.vars_path.read_text())
    reboot_host([host.address], configuration=variables["configuration"], secrets=variables["secrets"]["ssh"])

    def running_again() -> bool:
        now = web_container()
        if not now or now == before:
            return False
        try:
            running = on_host(kube.lab, host, tasks).split()
        except EndpointError:  # sshd reboots too
            return False
        return now in running and before not in running

    # the old container ended with the host; the kubelet, back, started a new one for the pod
    assert wait_until(running_again, 90, step=0.5), "the web container never came back after the reboot"
    assert on_host(kube.lab, host, "pgrep -f 'busybox httpd' || true").split()


def test_an_image_the_lab_lacks_gets_the_kubelets_own_error_and_the_lab_names_its_images(kube, core):
    variables = json.loads(kube.lab.vars_path.read_text())["configuration"]
    # its own, and the images of the workloads it builds, named as their manifests name them
    assert variables["lab_images"][:2] == [nodes.PAUSE_IMAGE, nodes.WEB_IMAGE]
    assert dns.IMAGE in variables["lab_images"]
    name = f"no-such-image-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_pod(DEMO_NAMESPACE, {"metadata": {"name": name}, "spec": {
        "nodeName": "worker1", "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "c", "image": "lab.chaosali.invalid/absent:1", "imagePullPolicy": "Never"}]}})
    try:
        def waiting_reason() -> str | None:
            statuses = core.read_namespaced_pod(name, DEMO_NAMESPACE).status.container_statuses or []
            return next((c.state.waiting.reason for c in statuses if c.state.waiting), None)

        assert wait_until(lambda: waiting_reason() == "ErrImageNeverPull", 60)
    finally:
        core.delete_namespaced_pod(name, DEMO_NAMESPACE, grace_period_seconds=0)


def test_a_containers_process_starts_with_its_pod_and_ends_with_its_deletion(kube, core):
    host = worker(kube.lab, "worker1")
    marker = str(10_000_000 + uuid.uuid4().int % 1_000_000)  # a sleep no other process runs
    find = f"pgrep -f 'busybox sleep {marker}' || true"
    assert on_host(kube.lab, host, find) == ""
    name = f"proof-{marker}"
    core.create_namespaced_pod(DEMO_NAMESPACE, {
        "metadata": {"name": name},
        "spec": {"nodeName": host.name, "terminationGracePeriodSeconds": 1, "containers": [{
            "name": "sleep", "image": nodes.WEB_IMAGE, "imagePullPolicy": "Never",
            "command": ["/bin/busybox", "sleep", marker]}]},
    })
    try:
        assert wait_until(lambda: on_host(kube.lab, host, find), 60), "the container's process never started"
        assert wait_until(lambda: core.read_namespaced_pod(name, DEMO_NAMESPACE).status.phase == "Running", 30)
        container_id = core.read_namespaced_pod(name, DEMO_NAMESPACE).status.container_statuses[0].container_id
        tasks = "ctr --address /run/containerd/containerd.sock -n k8s.io tasks ls -q"
        assert container_id.split("//")[1] in on_host(kube.lab, host, tasks).split()
    finally:
        core.delete_namespaced_pod(name, DEMO_NAMESPACE)

    def gone() -> bool:
        return not core.list_namespaced_pod(DEMO_NAMESPACE, field_selector=f"metadata.name={name}").items

    assert wait_until(gone, 60), "the pod was never deleted"
    assert on_host(kube.lab, host, find) == "", "the container's process outlived its pod"
    assert container_id.split("//")[1] not in on_host(kube.lab, host, tasks).split()


def test_a_kubelet_restarted_against_the_decoy_cluster_kills_its_containers_until_restored(kube, core, web_spread):
    """kubelet-misconfig as it happens: the kubelet reaches a sister cluster (same CA) where none of its
    pods exist, and kills their containers, while the right cluster still shows them Running."""
    variables = json.loads(kube.lab.vars_path.read_text())
    access = {"configuration": variables["configuration"], "secrets": variables["secrets"]["ssh"]}
    host = worker(kube.lab, "worker1")
    httpd = "pgrep -f 'busybox httpd' || true"

    def replica() -> client.V1Pod:
        return next(p for p in core.list_namespaced_pod(DEMO_NAMESPACE, label_selector="app=web").items
                    if p.spec.node_name == host.name and not p.metadata.deletion_timestamp)

    before, pod = on_host(kube.lab, host, httpd).split(), replica()
    assert before and http_get(kube.lab, pod.status.pod_ip) == pod.metadata.name
    fault = reconfigure_kubelet([host.address], apiserver=variables["configuration"]["wrong_apiserver"],
                                duration=120, **access)
    restarted = time.monotonic()
    try:
        killed = failed = None  # seconds from the restart to the web process gone, and to HTTP failing
        while (killed is None or failed is None) and time.monotonic() - restarted < 30:
            if killed is None and not set(before) & set(on_host(kube.lab, host, httpd).split()):
                killed = time.monotonic() - restarted
            sent = time.monotonic() - restarted  # a request to a vanished address fails by its timeout
            if failed is None and http_get(kube.lab, pod.status.pod_ip) is None:
                failed = sent
        assert killed is not None, "the kubelet never killed the containers of its pods"
        assert failed is not None, "the replica kept serving"
        # the right cluster still believes in the replica; its address no longer serves
        seen = core.read_namespaced_pod(pod.metadata.name, DEMO_NAMESPACE)
        assert seen.status.phase == "Running" and all(c.ready for c in seen.status.container_statuses)
        # the wrong cluster has the node (registered by the kubelet) and none of the pods
        decoy = yaml.safe_load(kube.admin_kubeconfig.read_text())
        decoy["clusters"][0]["cluster"]["server"] = variables["configuration"]["wrong_apiserver"]
        wrong = client.CoreV1Api(config.new_client_from_config_dict(decoy))
        assert host.name in [n.metadata.name for n in wrong.list_node().items]
        assert wrong.list_pod_for_all_namespaces().items == []
    finally:
        restore_kubelet([host.address], fault_id=fault["fault_id"], **access)
    restored = time.monotonic()

    def serving_again() -> bool:
        again = replica()
        return bool(again.status.container_statuses and again.status.container_statuses[0].ready
                    and http_get(kube.lab, again.status.pod_ip) == again.metadata.name)

    back = wait_until(serving_again, 60)
    assert back is not None, "the replica never served again after the restore"
    again = replica()
    assert again.metadata.uid == pod.metadata.uid  # the same pod, with new containers
    assert again.status.container_statuses[0].container_id != pod.status.container_statuses[0].container_id
    print(f"\nkubelet-misconfig (decoy): first container killed {killed:.1f} s, first HTTP request to fail "
          f"sent {failed:.1f} s after the restart; "
          f"replica Ready and serving {back:.1f} s after the restore (restart at +0, restore at "
          f"+{restored - restarted:.1f} s)")


def _lab_processes(lab: Lab) -> dict[str, str]:
    """Every process of the lab, by "pid starttime", with its command line: those in its hosts'
    network namespaces (sshd, kubelet, containerd, shims) and in its kubelets' cgroups (containers)."""
    pids = set()
    for host in lab.hosts:
        pids.update(subprocess.run(["ip", "netns", "pids", host.namespace], capture_output=True, text=True).stdout.split())
    for procs in glob.glob(f"{nodes.CGROUP_ROOT}/pids/{lab.name}-*/**/cgroup.procs", recursive=True):
        pids.update(Path(procs).read_text().split())
    found = {}
    for pid in pids:
        try:
            start = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
            found[f"{pid} {start}"] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
    return found


def _alive(processes: dict[str, str], timeout: float = 5.0) -> list[str]:
    """Those of ``processes`` still running (not zombies: a killed process waits for its parent to
    reap it) once the kernel has had ``timeout`` seconds to end them."""
    def running() -> list[str]:
        left = []
        for key, command in processes.items():
            pid, start = key.split()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[19] == start and fields[0] not in ("Z", "X"):
                left.append(f"{pid}: {command}")
        return left

    wait_until(lambda: not running(), timeout)
    return running()


def _mounts(needles: set[str]) -> list[str]:
    """Mounts of any mount namespace on the machine whose line names one of ``needles``."""
    found = set()
    for mountinfo in glob.glob("/proc/[0-9]*/mountinfo"):
        try:
            found.update(line for line in Path(mountinfo).read_text().splitlines()
                         if any(needle in line for needle in needles))
        except OSError:
            continue
    return sorted(found)


def test_lab_down_after_lab_up_was_killed_once_its_workloads_ran_leaves_nothing(one_test_session_at_a_time):
    """``lab up`` SIGKILLed once the demo's web containers run, before it finished (it still waits
    for them Ready and for the DNS): ``lab down`` removes everything. By then the lab has all a
    finished one has (the control plane and its decoy, every host's kubelet, containerd and
    kube-proxy with its chains, pods with their sandboxes, veths and volumes), so this one bring-up
    proves both: a finished lab and a half-made one leave nothing. The other tests use the shared lab."""
    lacking = nodes.missing()
    if lacking:
        pytest.skip(f"real worker nodes need {', '.join(lacking)} (scripts/setup installs them)")
    lab = Lab(**REAL_LAB)
    lab.down()
    up = subprocess.Popen([sys.executable, "-m", "chaosali.cli", "lab", "up", "--name", lab.name, "--subnet",
                           lab.subnet, "--nodes", "real"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = wait_until(lambda: "busybox httpd" in " ".join(_lab_processes(lab).values()), 120, step=0.1)
        assert started is not None and up.poll() is None, "no web container ran while lab up was running"
    finally:
        up.kill()
        up.wait()
    _assert_down_leaves_nothing(Lab.load(lab.name))


def _assert_down_leaves_nothing(lab: Lab) -> None:
    """Bring ``lab`` down, and prove that nothing of it is left: no process (host services, kubelets,
    containerd, shims, containers), mount in any mount namespace, cgroup, network namespace, or
    chain in the machine's own iptables."""
    processes = _lab_processes(lab)
    commands = " ".join(processes.values())
    for what in ("kubelet", "kube-proxy", "containerd --config", "containerd-shim-runc-v2", "busybox httpd"):
        assert what in commands, f"no {what} process among the lab's: the probe would prove nothing"
    netns = set()
    for key in processes:
        try:
            netns.add(os.readlink(f"/proc/{key.split()[0]}/ns/net"))
        except OSError:
            continue
    # by path, not by "net:[inode]": the kernel gives a freed namespace's number to the next one made,
    # and the labs beside this one make pod namespaces all the time (it found another lab's pod once)
    needles = {str(lab.state_dir)} | {line.split()[4] for line in _mounts(netns) if " nsfs " in line}
    assert _mounts({str(lab.state_dir)}) and glob.glob(f"{nodes.CGROUP_ROOT}/*/{lab.name}-*")
    assert any("/run/netns/cni-" in needle for needle in needles), "no pod network namespace: the probe would prove nothing"
    chains = _root_chains()
    began = _ticks_since_boot()

    lab.down()

    assert _alive(processes) == []
    assert _mounts(needles) == []
    assert glob.glob(f"{nodes.CGROUP_ROOT}/*/{lab.name}-*") == []
    # a process older than the down that is in one of the lab's namespaces (a younger one may be in
    # a new namespace that got a freed number)
    held = set()
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            if _start_ticks(proc) < began:
                held.add(os.readlink(f"{proc}/ns/net"))
        except (OSError, IndexError):
            continue
    assert not netns & held, "a network namespace of the lab lives on"
    assert [n for n in _ip_netns() if n.startswith(f"{lab.name}-")] == []
    assert _root_chains() == chains


def _start_ticks(proc: str) -> int:
    """When the process started, in clock ticks since boot."""
    return int(Path(f"{proc}/stat").read_text().rsplit(")", 1)[1].split()[19])


def _ticks_since_boot() -> int:
    return int(float(Path("/proc/uptime").read_text().split()[0]) * os.sysconf("SC_CLK_TCK"))


def _ip_netns() -> list[str]:
    return [line.split()[0] for line in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                        text=True).stdout.splitlines() if line.strip()]


def _root_chains() -> list[str]:
    """The chains of the machine's own iptables (the lab's live in its hosts' namespaces)."""
    return sorted(line.split()[0] for line in subprocess.run(["iptables-save"], capture_output=True,
                                                              text=True).stdout.splitlines() if line.startswith(":"))


# -- host faults on a worker, seen in the HTTP samples of the replicas (on the shared lab) --------------

FAULT_SECONDS = 6  # well under the lab's node grace: the node stays Ready, its replica an endpoint


def web_through_a_fault(kube, kube_chaos, fault: str, **arguments) -> dict[str, dict[str, dict]]:
    """Sample each worker's NodePort (the lab's ``web_urls``) 10 times a second with the impact
    recorder while ``fault`` (a chaosali.host action) hits worker1, which runs one web replica:
    ``before`` (from when every URL answered), ``during`` (from the fault in effect until its own
    timer healed it: no marker, no chain left) and ``after`` (until every URL answered again).
    Returns the measures of each phase by worker, with ``failing_seconds`` during: the longest
    stretch of failed samples of each URL. Prints them."""
    from chaosali.cluster.api import new_api_client
    from chaosali.core.http import check
    from chaosali.host import actions
    from chaosali.impact.measures import http_between
    from chaosali.impact.recorder import HttpTarget, Recorder, Scope
    from helpers import chaosali_chains, markers

    host = worker(kube.lab, "worker1")
    urls = {h.name: f"http://{h.address}:{nodes.WEB_NODE_PORT}/" for h in kube.lab.hosts if h.role == "worker"}
    assert sorted(urls.values()) == sorted(kube_chaos["configuration"]["web_urls"])
    targets = tuple(HttpTarget(name, *check(url, timeout=1), rate=10) for name, url in urls.items())
    recorder = Recorder(lambda: new_api_client(kube.admin, retries=0), Scope(("demo",)), http_targets=targets)

    def answering(least: int) -> dict:
        """The reading after which ``least`` samples of every URL in a row answered, once they have."""
        mark = recorder.recording()

        def answered() -> bool:
            nonlocal mark
            now = recorder.recording()
            since = http_between(mark, now)
            if any(m["samples"] < least for m in since.values()):
                return False
            if all(m["availability"] == 100 for m in since.values()):
                return True
            mark = now  # a miss: count again from here
            return False

        assert wait_until(answered, 30, step=0.5), f"the web URLs did not answer {least} times in a row: {mark['http']}"
        return mark

    recorder.start()
    try:
        steady = answering(20)  # the web through kube-proxy once it knows both new replicas
        before = recorder.recording()
        getattr(actions, fault)([host.address], duration=FAULT_SECONDS, **arguments, **kube_chaos)
        injected = recorder.recording()  # the fault in effect (a sample sent while injecting is in neither)
        active = "ls /run/chaosali/*/restore.sh 2>/dev/null || true"  # a healed load keeps its samples' marker
        assert wait_until(lambda: not on_host(kube.lab, host, active), FAULT_SECONDS + 10, step=0.5), "never healed"
        healed = recorder.recording()
        # what the host sampled while its fault lasted (a load's), read back and removed: nothing is left
        observed = actions.restore_faults([host.address], **kube_chaos).get("observed", {})
        assert markers(kube.lab, host) == [] and chaosali_chains(host) == []
        answering(5)
        after = recorder.recording()
    finally:
        recorder.stop()
    phases = {"before": http_between(steady, before), "during": http_between(injected, healed),
              "after": http_between(healed, after), "observed": observed}
    for name, target in after["http"].items():
        phases["during"][name]["failing_seconds"] = max(
            [min(w["to"], healed["seconds"]) - max(w["from"], injected["seconds"]) for w in target["error_windows"]
             if w["to"] is not None and w["to"] > injected["seconds"] and w["from"] < healed["seconds"]], default=0)
    print(f"\n{fault} on worker1 ({FAULT_SECONDS} s): " + "; ".join(
        f"{phase} " + ", ".join(f"{name} {m['availability']}% of {m['samples']}, p95 {1000 * (m['p95'] or 0):.1f} ms"
                                for name, m in phases[phase].items()) for phase in ("before", "during", "after"))
        + "; failing " + ", ".join(f"{name} {m['failing_seconds']:.1f} s" for name, m in phases["during"].items()))
    return phases


def test_host_netcut_of_a_worker_fails_the_requests_through_it_until_it_heals(kube, kube_chaos, real_containers,
                                                                             web_spread):
    """A cut worker's pods are cut off with it (its FORWARD traffic too): its NodePort answers
    nothing for the whole cut (1 s timeouts in a row); the other worker's fails the requests it
    sends to worker1's replica, still an endpoint (the node stays Ready through the cut)."""
    phases = web_through_a_fault(kube, kube_chaos, "cut_network")
    assert phases["during"]["worker1"]["failing_seconds"] >= FAULT_SECONDS - 2, phases["during"]
    assert phases["during"]["worker2"]["availability"] < 100, phases["during"]


def test_packet_loss_on_a_worker_fails_requests_through_it_until_it_heals(kube, kube_chaos, real_containers,
                                                                         web_spread):
    """Each request's packets cross the lossy worker a few times (in and out, handshake and all):
    requests through it fail or time out, while the replica is still an endpoint."""
    phases = web_through_a_fault(kube, kube_chaos, "lose_packets", percent=30)
    assert phases["during"]["worker1"]["availability"] < 100, phases["during"]


def test_node_high_load_of_a_worker_fails_no_request_through_any_worker(
        kube, kube_chaos, real_containers, web_spread):
    """A lab host has no CPUs of its own: the busy loops of worker1 take the machine's, which every
    host (and this test) shares, so the latency rises through either NodePort alike (printed, not
    judged: bench/real_nodes.py measures it). What is asserted: the load took effect, and every
    request was still answered."""
    phases = web_through_a_fault(kube, kube_chaos, "stress_cpu")
    [load] = [fault for faults in phases["observed"].values() for fault in faults.values()]
    assert load["took_effect"] and load["load_cpu_percent"] >= 20, load
    assert all(m["availability"] == 100 for phase in ("during", "after") for m in phases[phase].values()), phases
