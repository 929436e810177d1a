"""What the tests share that is not a fixture: the repository, waiting, the lab's hosts over SSH,
``chaos run`` and its journal, and the checks every drill test makes (the report agrees with
``chaos run``, a drill passed). Fixtures live in conftest.py and import from here."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kubernetes import client as k8s

from chaosali.core import waiting
from chaosali.host.ssh import Host, SSHSettings, run_script
from chaosali.lab import nodes
from chaosali.lab.hosts import Lab, LabHost
from chaosali.report.figures import read_run
from chaosali.report.planned import versus
from chaosali.report.words import expectations, run_verdict


REPO = Path(__file__).resolve().parent.parent


def settings(lab: Lab) -> SSHSettings:
    return SSHSettings(key_path=str(lab.key_path), known_hosts=str(lab.known_hosts))


def markers(lab: Lab, host: LabHost) -> list[str]:
    return run_script(Host(host.address), "ls /run/chaosali 2>/dev/null || true", settings(lab)).split()


def chaosali_chains(host: LabHost) -> list[str]:
    rules = subprocess.run(
        ["ip", "netns", "exec", host.namespace, "iptables", "-S"], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in rules.splitlines() if "chaosali-" in line]


def ping(address: str, namespace: str | None = None, count: int = 1, interval: float = 0.2) -> int:
    """Replies received to ``count`` pings, from the root namespace or from inside a host."""
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    out = subprocess.run(
        prefix + ["ping", "-n", "-q", "-c", str(count), "-i", str(interval), "-W", "1", address],
        capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        if "received" in line:
            return int(line.split(",")[1].split()[0])
    return 0


def tcp_answers(address: str, port: int = 22, timeout: float = 1.0) -> bool:
    try:
        socket.create_connection((address, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def wait_until(condition: Callable[[], object], timeout: float, step: float = 0.2) -> float | None:
    """Seconds until ``condition()`` is true, or None if it is not within ``timeout``."""
    start = time.monotonic()
    held, _ = waiting.wait_until(condition, start + timeout, step)
    return time.monotonic() - start if held else None


class KubeAccess:
    """Kubeconfigs of a real cluster: the lab's, or the one named by CHAOSALI_TEST_KUBECONFIG."""

    def __init__(self, admin: Path, readonly: Path, lab: Lab | None = None) -> None:
        self.admin_kubeconfig = admin
        self.readonly_kubeconfig = readonly
        self.lab = lab
        self.kwok_because: str | None = None  # why the lab's workers are kwok, not real

    @property
    def admin(self) -> dict:
        """The configuration of activities that act as the cluster's admin."""
        return {"kubeconfig_path": str(self.admin_kubeconfig)}


def kubelet_process(lab: Lab) -> str:
    """The process that is a worker's kubelet in ``lab``: a real kubelet, or kwok standing in for it."""
    return "kubelet" if json.loads(lab.vars_path.read_text())["configuration"].get("lab_nodes") == "real" else "kwok"


def workload_container(api, name: str) -> dict:
    """A container for a test's own workload: the lab's web image where the workers are real (nothing
    can be pulled there), else any image (kwok runs none)."""
    if k8s.CoreV1Api(api).list_node(label_selector="type=real").items:
        return {"name": name, "image": nodes.WEB_IMAGE, "imagePullPolicy": "Never"}
    return {"name": name, "image": "nginx:1.27"}


def runs_real_kube_monkey(lab: Lab) -> bool:
    """Whether the lab's nodes run kube-monkey's pods with the real binary (built from its source):
    its image on real workers, else the pods service of every kwok node."""
    variables = json.loads(lab.vars_path.read_text())["configuration"]
    if variables.get("lab_nodes") == "real":
        return any("kube-monkey" in image for image in variables["lab_images"])
    return all("--binary=kube-monkey=" in (lab.host_dir(host) / "services" / "pods.sh").read_text()
               for host in lab.hosts if host.role in ("master", "worker"))


def chaos_run(tmp_path: Path, experiment: str, var_files: list[Path], *extra: str, **popen) -> subprocess.Popen:
    """Start the real ``chaos run`` on a shipped experiment; the journal goes to tmp_path/journal.json."""
    command = ["chaos", "run", "--journal-path", str(tmp_path / "journal.json")]
    for var_file in var_files:
        command += ["--var-file", str(var_file)]
    command += [*extra, str(REPO / "experiments" / experiment)]
    return subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)


def plan_of(tmp_path: Path, experiment: str, var_files: list[Path], *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the real ``chaosali plan`` as ``chaos_run`` would run the experiment (same var files and
    --var); its JSON plan is kept in tmp_path/plan.json."""
    command = ["chaosali", "plan", "--format", "json", "-o", str(tmp_path / "plan.json")]
    for var_file in var_files:
        command += ["--var-file", str(var_file)]
    source = experiment if os.path.isabs(experiment) else str(REPO / "experiments" / experiment)
    done = subprocess.run([*command, *extra, source], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert (tmp_path / "plan.json").exists(), done.stdout + done.stderr
    return done, json.loads((tmp_path / "plan.json").read_text())


def assert_plan_agrees(plan: dict, journal: dict) -> None:
    """The hosts the plan resolved are exactly the hosts the run's journal says it hit."""
    rows = versus(plan, journal)
    assert rows and all(row["same"] for row in rows), rows


def hidden_tc(lab: Lab, host: LabHost) -> Path:
    """A host whose sudo finds no tc: its secure_path lacks the sbin directories."""
    drop_in = lab.host_dir(host) / "sudoers.d" / "test-path"
    drop_in.write_text("Defaults secure_path=/usr/local/bin:/usr/bin:/bin\n")
    drop_in.chmod(0o440)
    return drop_in


def journal_of(run: subprocess.Popen, tmp_path: Path, timeout: float = 300) -> dict:
    """Wait for a ``chaos run`` and return its journal; its output is in the failure message."""
    output = run.communicate(timeout=timeout)[0].decode()
    journal = tmp_path / "journal.json"
    assert journal.exists(), output
    journal = json.loads(journal.read_text())
    assert_report_agrees(journal)
    return journal


# the report's verdicts that mean a failed drill: chaos run must have deviated (or failed) then
FAILED_VERDICTS = ("FAULT NOT OBSERVED", "NOT DETECTED", "EXCEEDED", "DEVIATED")


def assert_report_agrees(journal: dict) -> None:
    """Every drill a test runs: the report's verdict and chaos run's own must tell the same story."""
    if journal.get("status") != "completed":
        return  # interrupted, aborted or failed: chaos run said so itself
    verdict = run_verdict(read_run(journal))
    assert (verdict in FAILED_VERDICTS) == journal["deviated"], (
        f"the report says {verdict!r} but chaos run's journal says deviated={journal['deviated']}")


class Passed:
    """Whether a drill passed, falsy with the reasons when not: pytest prints them under a failed assert."""

    def __init__(self, journal: dict) -> None:
        self.reasons = [f"{key} {journal[key]!r}" for key, good in (("status", "completed"), ("deviated", False))
                        if journal[key] != good]
        for phase, state in journal.get("steady_states", {}).items():
            for probe in (state or {}).get("probes", []):
                if probe.get("tolerance_met") is False:
                    output = json.dumps(probe.get("output"), default=str)[:600]
                    self.reasons.append(f"{phase}: {probe['activity']['name']} missed its tolerance: {output}")
        # a run that deviated stopped its last check at the first miss: it may have no faults_observed
        if journal["status"] == "completed" and not self.reasons:
            judged = fault_proven(journal)
            if not judged["proven"]:
                self.reasons.append(f"faults not proven: {judged.get('why')}")

    def __bool__(self) -> bool:
        return not self.reasons

    def __repr__(self) -> str:
        return "passed" if not self.reasons else "not passed:\n  " + "\n  ".join(self.reasons)


def outputs(journal: dict) -> dict:
    """Each method activity's output, by its name."""
    return {run["activity"]["name"]: run.get("output") for run in journal["run"]}


def impact_of(journal: dict) -> dict:
    """The impact recorder's entry in the journal (its control is declared by the drill)."""
    return next(entry for entry in journal.get("extensions") or [] if entry.get("name") == "chaosali-impact")


def hypothesis_after(journal: dict) -> dict:
    """The steady state's probes after the method, by their names."""
    return {probe["activity"]["name"]: probe for probe in journal["steady_states"]["after"]["probes"]}


def passed(journal: dict) -> Passed:
    """A drill that passed: completed, not deviated, and its faults proven by its own faults_observed."""
    return Passed(journal)


def fault_proven(journal: dict) -> dict:
    """The run's own judgement of its faults (the steady state's last faults_observed)."""
    after = journal["steady_states"]["after"]["probes"]
    [judged] = [p["output"] for p in after if p["activity"]["provider"].get("func") == "faults_observed"]
    return judged


def sh(script: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a host script here (``sh -s``, in ``cwd``), as a host runs what chaosali sends it over SSH."""
    return subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, timeout=20, cwd=cwd)


# -- every shipped drill the monitored lab runs, one after another, as a user runs them ---------------

# Each with the options a user would give it every time (shorter timings where they prove as much).
# etcd-partition and master-netcut-ha need three masters (tests/test_ha.py), host-netcut a plain host.
SEQUENCE = {
    "apiserver-crash.json": ("settle_seconds:int=2",),
    # filled past the alert (< 15 % free), short of the kubelet's eviction (< 10 %) of the 64 MiB disk
    "disk-full.json": ("fill_nodes=kubernetes.io/hostname=worker1", "fill_percent:int=88", "keep_free_megabytes:int=4",
                       "fill_seconds:int=20"),
    "dns-outage.json": ("cut_seconds:int=12", "settle_seconds:int=2"),
    # etcd stopped (SIGSTOP): its sockets stay open, its scrapes time out, and the API server's with them
    "etcd-hang.json": ("settle_seconds:int=2",),
    # kube-monkey schedules schedule_delay s after it starts and kills within the next minute
    "kube-monkey.json": ("kill_seconds:int=80",),
    # against the lab's decoy (the var file's wrong_apiserver): the kubelet kills its containers
    "kubelet-misconfig.json": (),
    "master-netcut.json": ("settle_seconds:int=5",),
    "node-drain.json": ("drain_timeout:int=10",),
    # worker1 loaded long enough for HostCPUSaturated to fire (7 s after the load began, on this lab)
    "node-high-load.json": ("node_selector=kubernetes.io/hostname=worker1", "load_seconds:int=20"),
    "node-reboot.json": (),
    "random-chaos.json": (),
    "zone-outage.json": ("cut_seconds:int=46", "notready_seconds:int=36"),
}
ON_OTHER_LABS = {"etcd-partition.json", "master-netcut-ha.json", "host-netcut.json"}
# the drills whose tests compare the plan made before the run with the hosts the run hit
PLANNED = {"kubelet-misconfig.json", "random-chaos.json", "zone-outage.json"}


@dataclass
class Drill:
    """One drill of a sequence: its journal, its verdict (the report's word), how long ``chaos run``
    took, and what was read around it before the next drill changed it (``seen``)."""

    journal: dict
    verdict: str
    seconds: float
    seen: dict = field(default_factory=dict)


def run_in_order(lab: Lab, directory: Path, names: list[str]) -> dict[str, Drill]:
    """Run the drills one after another against the (monitored) cluster ``lab``, as a user would;
    each leaves no fault on any host."""
    done: dict[str, Drill] = {}
    for name in names:
        where = directory / name.removesuffix(".json")
        where.mkdir()
        options = [f"--var={option}" for option in SEQUENCE[name]]
        seen: dict = {}
        if name in PLANNED:
            # the drill's spread control puts the replicas back before anything else: the plan (which
            # knows nothing of it) judges the placement the run will act on
            respread_web(lab)
            seen["plan"] = plan_of(where, name, [lab.vars_path], *options)
        started = time.monotonic()
        journal = journal_of(chaos_run(where, name, [lab.vars_path], *options), where, timeout=600)
        took = time.monotonic() - started
        seen.update(_seen_after(lab, name, journal))
        for host in lab.hosts:
            assert markers(lab, host) == [] and chaosali_chains(host) == [], (name, host.name)
        done[name] = Drill(journal, run_verdict(read_run(journal)), took, seen)
        print(f"\n{name}: {done[name].verdict} in {took:.0f} s")
    return done


def failing_checks(journal: dict) -> list[str]:
    """What a drill's verdict rests on when it is not ok: the FMEA's expectations it missed (the
    report's sentences) and the steady-state probes that missed their tolerance (their output)."""
    missed = [f"{e.name}: {e.sentence}" for e in expectations(read_run(journal)) if e.met is False]
    return missed + [reason for reason in passed(journal).reasons if reason not in missed]


def respread_web(lab: Lab) -> None:
    """The lab's demo workload put back where its spread wants it, as the drills' spread control does."""
    from chaosali.cluster.api import connect
    from chaosali.cluster.spread import respread

    with connect({"kubeconfig_path": json.loads(lab.vars_path.read_text())["configuration"]["kubeconfig_path"]}) as cluster:
        respread(cluster, "demo", "web", 120)


def _seen_after(lab: Lab, name: str, journal: dict) -> dict:
    """What a test checks that the next drill would change: the alerts firing right after each drill,
    and the age of a rebooted host's processes."""
    from chaosali.monitoring.prometheus import client as prometheus

    variables = json.loads(lab.vars_path.read_text())
    alerts = prometheus(None, 2.0, variables["configuration"], variables["secrets"]["prometheus"]).alerts()
    seen: dict = {"firing": {alert["labels"].get("alertname") for alert in alerts if alert["state"] == "firing"}}
    if name == "node-reboot.json":
        rebooted = next(run["output"] for run in journal["run"] if run["activity"]["name"] == "reboot-a-worker")
        seen["ages"] = run_script(Host(rebooted["hosts"][0]["address"]), "ps -e -o etimes=,comm=,pid=,args=",
                                  settings(lab)).splitlines()
    return seen
