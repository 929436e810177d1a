"""`chaosali schedule`: a drill as a Job or CronJob, its least-privilege account and its credentials.

The unit tests judge the rendered manifests; test_schedule_lab runs a scheduled drill on the lab's
real workers and reads its journal back with `chaosali runs`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from chaosali.cli import main
from chaosali.core.errors import InvalidArgument
from chaosali.plan.build import load
from chaosali.plan.rbac import rbac
from chaosali.schedule.manifests import (SLACK, START_SECONDS, Bundle, Options, deadline_seconds, drill_name, render,
                                         runner_affinity)
from helpers import REPO

PASSWORD = "sudo-pass-7f3a"


@pytest.fixture
def var_file(tmp_path: Path) -> Path:
    (tmp_path / "id_test").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-key-body\n")
    (tmp_path / "known_hosts").write_text("10.213.0.2 ssh-ed25519 AAAAknownhost\n")
    path = tmp_path / "vars.json"
    path.write_text(json.dumps({
        "configuration": {"kubeconfig_path": str(tmp_path / "admin.kubeconfig"),
                          "ssh_known_hosts": str(tmp_path / "known_hosts"), "cut_seconds": 10},
        "secrets": {"ssh": {"user": "root", "key_path": str(tmp_path / "id_test")},
                    "ssh_sudo": {"user": "drill", "password": PASSWORD}}}))
    return path


def scheduled(capsys, experiment: str, var_file: Path, *extra: str) -> dict[str, dict]:
    """The documents `chaosali schedule` prints, by "Kind namespace/name"."""
    assert main(["schedule", str(REPO / "experiments" / experiment), "--var-file", str(var_file), *extra]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    return {f"{d['kind']} {d['metadata'].get('namespace', '')}/{d['metadata']['name']}": d for d in documents}


def pod_of(documents: dict[str, dict]) -> dict:
    job = next(d for d in documents.values() if d["kind"] in ("Job", "CronJob"))
    spec = job["spec"]["jobTemplate"]["spec"] if job["kind"] == "CronJob" else job["spec"]
    return spec["template"]["spec"]


def test_ssh_credentials_and_known_hosts_are_in_the_secret_never_in_the_config_map_or_the_pod(capsys, var_file):
    documents = scheduled(capsys, "master-netcut.json", var_file, "--now")
    secret = documents["Secret chaos/chaosali-master-netcut-ssh"]
    files = {name: base64.b64decode(value).decode() for name, value in secret["data"].items()}
    assert files["ssh.key"].endswith("secret-key-body\n") and files["known_hosts"].startswith("10.213.0.2 ")
    assert json.loads(files["secrets.json"])["secrets"] == {
        "ssh": {"user": "root", "key_path": "/var/run/chaosali/ssh/ssh.key"},
        "ssh_sudo": {"user": "drill", "password": PASSWORD}}
    elsewhere = json.dumps([d for name, d in documents.items() if not name.startswith("Secret ")])
    for secret_text in ("secret-key-body", PASSWORD, "AAAAknownhost", "admin.kubeconfig"):
        assert secret_text not in elsewhere
    drill = documents["ConfigMap chaos/chaosali-master-netcut"]["data"]
    configuration = json.loads(drill["vars.json"])["configuration"]
    assert configuration["kubeconfig_path"] == "" and configuration["ssh_known_hosts"] == "/var/run/chaosali/ssh/known_hosts"
    assert json.loads(drill["experiment.json"]) == json.loads((REPO / "experiments" / "master-netcut.json").read_text())
    volumes = {v["name"]: v for v in pod_of(documents)["volumes"]}
    assert volumes["ssh"]["secret"] == {"secretName": "chaosali-master-netcut-ssh", "defaultMode": 0o440}
    mounts = {m["name"]: m for m in pod_of(documents)["containers"][0]["volumeMounts"]}
    assert mounts["ssh"]["readOnly"] and mounts["drill"]["readOnly"]


def test_a_drill_run_now_is_a_job_tried_once_within_a_deadline_from_its_own_durations(capsys, var_file):
    documents = scheduled(capsys, "master-netcut.json", var_file, "--now", "--namespace", "drills")
    job = next(d for d in documents.values() if d["kind"] == "Job")
    assert job["metadata"]["name"].startswith("chaosali-master-netcut-") and job["metadata"]["namespace"] == "drills"
    assert job["spec"]["backoffLimit"] == 0
    # master-netcut: its cut (10 s), the watch of the API (60 s), the API probe's timeout (2 s) twice, its settle (10 s)
    assert job["spec"]["activeDeadlineSeconds"] == int(SLACK * (10 + 60 + 2 * 2 + 10)) + START_SECONDS
    longer = scheduled(capsys, "master-netcut.json", var_file, "--now", "--var", "cut_seconds:int=110")
    assert next(d for d in longer.values() if d["kind"] == "Job")["spec"]["activeDeadlineSeconds"] == \
        job["spec"]["activeDeadlineSeconds"] + SLACK * 100


def test_a_cron_schedule_never_overlaps_and_runs_the_image_of_this_version(capsys, var_file):
    from chaosali import __version__

    written = var_file.parent / "drill.yaml"
    assert main(["schedule", str(REPO / "experiments" / "node-drain.json"), "--var-file", str(var_file),
                 "--cron", "0 3 * * 2", "-o", str(written)]) == 0
    documents = {f"{d['kind']} {d['metadata'].get('namespace', '')}/{d['metadata']['name']}": d
                 for d in yaml.safe_load_all(written.read_text())}
    cron = documents["CronJob chaos/chaosali-node-drain"]
    assert cron["spec"]["schedule"] == "0 3 * * 2" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    container = pod_of(documents)["containers"][0]
    assert container["image"] == f"chaostoolkit-ali:{__version__}"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod_of(documents)["securityContext"]["runAsNonRoot"] is True


def test_the_account_holds_the_rules_of_plan_rbac_and_may_keep_its_journal(capsys, var_file):
    documents = scheduled(capsys, "master-netcut.json", var_file, "--now")
    assert main(["plan", str(REPO / "experiments" / "master-netcut.json"), "--rbac"]) == 0
    planned = {f"{d['kind']} {d['metadata'].get('namespace', '')}/{d['metadata']['name']}": d["rules"]
               for d in yaml.safe_load_all(capsys.readouterr().out)}
    granted = {name: d["rules"] for name, d in documents.items() if d["kind"] in ("Role", "ClusterRole")}
    journal = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}
    assert granted == {**planned, "Role chaos/chaosali-master-netcut": [journal]}
    bindings = [d for d in documents.values() if d["kind"].endswith("Binding")]
    assert len(bindings) == len(granted)
    assert all(b["subjects"] == [{"kind": "ServiceAccount", "name": "chaosali-master-netcut", "namespace": "chaos"}]
               for b in bindings)
    assert pod_of(documents)["serviceAccountName"] == "chaosali-master-netcut"


def test_the_runner_stays_off_the_masters_master_netcut_cuts(capsys, var_file):
    affinity = pod_of(scheduled(capsys, "master-netcut.json", var_file, "--now"))["affinity"]
    assert affinity == {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"},
                              {"key": "node-role.kubernetes.io/master", "operator": "DoesNotExist"}]}]}}}


def cut(targets: dict) -> dict:
    return {"method": [{"type": "action", "name": "cut", "provider": {
        "type": "python", "module": "chaosali.host.actions", "func": "cut_network", "arguments": {"targets": targets}}}]}


def test_the_runner_stays_off_every_node_an_unsampled_query_hits_and_a_sampled_one_leaves_out_its_node():
    nodes = runner_affinity(cut({"nodes": "node-role.kubernetes.io/worker,topology.kubernetes.io/zone in (a, b)"}),
                            {}, {})
    assert nodes["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "node-role.kubernetes.io/worker", "operator": "DoesNotExist"}]},
        {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "NotIn", "values": ["a", "b"]}]}]
    pods = runner_affinity(cut({"pods": {"namespace": "shop", "label_selector": "app=cart,tier!=db"}}), {}, {})
    assert pods == {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["cart"]},
                                               {"key": "tier", "operator": "NotIn", "values": ["db"]}]},
        "namespaces": ["shop"], "topologyKey": "kubernetes.io/hostname"}]}}
    assert runner_affinity(cut({"nodes": "node-role.kubernetes.io/worker", "count": 1}), {}, {}) == {}
    assert runner_affinity(cut(["10.213.0.2"]), {}, {}) == {}


def test_a_missing_key_file_is_refused_naming_it(tmp_path):
    with pytest.raises(InvalidArgument, match=r"secrets ssh key_path '/nowhere/id' cannot be read .*give a file"):
        Bundle.of("{}", {}, {"ssh": {"user": "root", "key_path": "/nowhere/id"}})


def test_a_drill_whose_permissions_cannot_be_derived_is_not_scheduled(var_file):
    experiment, configuration, secrets = load(str(REPO / "experiments" / "host-netcut.json"), [str(var_file)], [])
    needs = {"rules": [], "unknown": ["method 'x': chaosk8s.pod.actions.terminate_pods is not chaosali's"]}
    with pytest.raises(InvalidArgument, match="grant them by hand, or drop those activities"):
        render("chaosali-x", experiment, configuration, secrets, Bundle.of("{}", {}, {}), needs, Options())
    assert rbac(experiment, configuration, secrets)["unknown"] == []


def test_names_and_deadlines_of_every_shipped_experiment():
    for path in sorted((REPO / "experiments").glob("*.json")):
        experiment, configuration, secrets = load(str(path), [], [])
        assert START_SECONDS < deadline_seconds(experiment, configuration, secrets) < 3 * 3600, path.name
        assert drill_name(str(path)) == f"chaosali-{path.stem}"
    with pytest.raises(InvalidArgument, match="rename it"):
        drill_name("__.json")
    assert Options(now=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)).cron is None


def test_the_containerfile_and_the_lab_s_image_run_the_same_runner_as_the_same_user(tmp_path):
    import tarfile

    from chaosali import __version__
    from chaosali.lab import runner_image
    from chaosali.schedule.manifests import RUNNER_UID

    containerfile = (REPO / "Containerfile").read_text()
    assert "-t chaostoolkit-ali:" in containerfile  # the tag `chaosali schedule` names: the version
    assert f"USER {RUNNER_UID}:{RUNNER_UID}" in containerfile and "FROM docker.io/library/python:3.11-" in containerfile
    layer = tmp_path / "layer.tar"
    with tarfile.open(layer, "w"):
        pass
    runner_image._docker_archive(tmp_path / "image.tar", [layer])
    with tarfile.open(tmp_path / "image.tar") as archive:
        manifest = json.load(archive.extractfile("manifest.json"))[0]
        config = json.load(archive.extractfile(manifest["Config"]))["config"]
    assert manifest["RepoTags"] == [f"chaostoolkit-ali:{__version__}"]
    assert f'CMD {json.dumps(config["Cmd"])}' in containerfile
    assert config["User"] == f"{RUNNER_UID}:{RUNNER_UID}" and config["WorkingDir"] == "/tmp"
    assert runner_image.full_name() == f"docker.io/library/chaostoolkit-ali:{__version__}"


def test_runs_tell_a_run_the_lock_refused_a_run_killed_before_its_journal_and_an_unreadable_journal():
    import gzip

    from kubernetes import client

    from chaosali.schedule.runs import _run, table

    started = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.timezone.utc)

    def job(name: str, succeeded: bool) -> client.V1Job:
        failed = [] if succeeded else [client.V1JobCondition(type="Failed", status="True", reason="BackoffLimitExceeded",
                                                              last_transition_time=started + dt.timedelta(seconds=13))]
        return client.V1Job(metadata=client.V1ObjectMeta(name=name, labels={"chaosali/schedule": "chaosali-x"}),
                            status=client.V1JobStatus(start_time=started, succeeded=1 if succeeded else None,
                                                      completion_time=started + dt.timedelta(seconds=27) if succeeded
                                                      else None, conditions=failed))

    def kept(journal: dict) -> client.V1Secret:
        data = {"journal.json.gz": gzip.compress(json.dumps(journal).encode()), "runner.json": b"{}"}
        return client.V1Secret(data={k: base64.b64encode(v).decode() for k, v in data.items()})

    refused = {"experiment": {"title": "x"}, "status": "interrupted", "deviated": False, "run": [], "extensions": [
        {"name": "chaosali-lock", "refused": {"namespace": "default", "name": "chaosali-drill-lock",
                                              "holder": "chaosali@chaosali-x-1-abcde", "since": "2026-12-07T03:00:01Z"}}]}
    found = _run(job("chaosali-x-2", False), kept(refused), "chaos")
    assert (found["job"], found["status"], found["seconds"]) == ("failed (BackoffLimitExceeded)", "interrupted", 13)
    assert found["verdict"] == ("REFUSED by the lock: default/chaosali-drill-lock held by chaosali@chaosali-x-1-abcde "
                                "since 2026-12-07T03:00:01Z")
    assert found["journal"] == "Secret chaos/chaosali-x-2-journal"
    # the API cut by the drill that holds the lock: this one could not take it, and says why
    cut_off = dict(refused, extensions=[{"name": "chaosali-lock", "refused": {
        "namespace": "default", "name": "chaosali-drill-lock", "holder": None,
        "why": "could not be taken: read Lease default/chaosali-drill-lock: timed out"}}])
    assert _run(job("chaosali-x-5", False), kept(cut_off), "chaos")["verdict"] == (
        "REFUSED by the lock: default/chaosali-drill-lock could not be taken: read Lease default/chaosali-drill-lock: "
        "timed out")
    killed = _run(job("chaosali-x-3", False), None, "chaos")
    assert (killed["status"], killed["journal"]) == ("interrupted", None)
    assert killed["verdict"].startswith("INTERRUPTED: its pod ended (failed (BackoffLimitExceeded))")
    unreadable = _run(job("chaosali-x-4", True), kept({"status": "completed"}), "chaos")
    assert unreadable["verdict"] == "UNREADABLE journal: journal: not a Chaos Toolkit journal (no experiment in it)"
    lines = table([found, killed]).splitlines()
    assert lines[0].split()[:4] == ["run", "started", "seconds", "job"] and len(lines) == 3
    assert table([]) == "no run of a scheduled drill in this namespace\n"
