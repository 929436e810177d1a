"""Monitoring in the drill: the lab's Prometheus, the PromQL and alert probes, the alerts the
impact recorder keeps, and the FMEA's expected alerts judged in every report format.

The unit tests read a real journal (``data/alerts.json``: master-netcut run against the lab's
Prometheus, whose KubeAPIDown fired 3.1 s after the cut); the lab tests run a real Prometheus, and
the shipped drills of one master, one worker, one zone or the cluster DNS on its lab (two workers
in two zones), each judged by the alerts its FMEA declares.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed

from chaosali.core.errors import InvalidArgument
from chaosali.host import actions
from chaosali.impact import controls
from chaosali.impact.measures import ALERT_MOMENTS, detections, expected_alerts, sorted_alerts
from chaosali.impact.recorder import Recorder, Scope
from chaosali.lab import dns
from chaosali.lab.hosts import LabHost
from chaosali.lab.monitoring import RULES, Monitoring
from chaosali.lab.nodes import WEB_LOCAL_NODE_PORT
from chaosali.lab.pki import make_pki
from chaosali.monitoring.prometheus import client
from chaosali.monitoring.probes import alerts_firing, query
from chaosali.report.figures import read_run
from chaosali.report.recovery import RECOVERED
from chaosali.report.fmea import validate_fmea
from chaosali.report.model import seconds_text
from chaosali.report.render import render
from chaosali.report.words import run_verdict
from helpers import (ON_OTHER_LABS, REPO, SEQUENCE, Drill, KubeAccess, assert_plan_agrees, chaos_run, failing_checks,
                     fault_proven, hypothesis_after, impact_of, journal_of, kubelet_process, outputs, passed,
                     wait_until)
from test_dns_outage import ANSWERING, RESOLVED, answers, dns_hosts

DATA = Path(__file__).parent / "data"


def monitored_journal(detection: object) -> dict:
    journal = json.loads((DATA / "alerts.json").read_text())
    journal["experiment"]["extensions"][0]["fmea"]["detection"] = copy.deepcopy(detection)
    return journal


# -- unit: expected alerts and their judgement ------------------------------------------------------


def test_detection_is_a_plain_name_or_alerts_with_limits():
    assert expected_alerts("api-ready") == []
    assert expected_alerts({"alert": "KubeAPIDown", "within_seconds": 60}) == [
        {"alert": "KubeAPIDown", "within_seconds": 60.0}]
    assert expected_alerts([{"alert": "HostDown"}]) == [{"alert": "HostDown", "within_seconds": None}]
    for bad in ({"alert": ""}, {"name": "X"}, {"alert": "X", "within_seconds": "3"}, [], [1],
                {"alert": "X", "within_seconds": -1}):
        with pytest.raises(InvalidArgument):
            expected_alerts(bad)


def test_the_fmea_names_a_malformed_detection():
    experiment = json.loads((REPO / "experiments" / "master-netcut.json").read_text())
    experiment["extensions"][0]["fmea"]["detection"] = {"alert": "KubeAPIDown", "within": 3}
    with pytest.raises(InvalidArgument, match="detection .*within_seconds"):
        validate_fmea(experiment)


# on the recording's clock: the fault starts at 30 s and heals at 50 s
ALERTS = [
    {"alert": "KubeAPIDown", "labels": {"alertname": "KubeAPIDown"}, "firing_at": 35.0, "resolved_at": 52.0,
     "at_start": False},
    {"alert": "HostDown", "labels": {"alertname": "HostDown", "host": "master1"}, "firing_at": 0.0,
     "resolved_at": None, "at_start": True},
    {"alert": "EtcdNoLeader", "labels": {"alertname": "EtcdNoLeader"}, "firing_at": None, "resolved_at": None},
]


def test_time_to_detect_and_to_resolve_and_what_was_missed():
    expected = expected_alerts([{"alert": "KubeAPIDown", "within_seconds": 10}, {"alert": "HostDown"},
                                {"alert": "KubeAPIDown", "within_seconds": 4}, {"alert": "EtcdNoLeader"}])
    met, before_the_fault, late, pending_only = detections(ALERTS, expected, 30.0, 50.0)
    assert (met["met"], met["seconds_to_detect"], met["seconds_to_resolve"]) == (True, 5.0, 2.0)
    # firing since before the fault: it detects nothing of this fault
    assert before_the_fault["met"] is False and before_the_fault["why"].startswith("NOT DETECTED")
    assert late["met"] is False and "later than 4 s" in late["why"]
    assert pending_only["met"] is False
    # without alerts recorded (no Prometheus) nothing is judged
    assert [d["met"] for d in detections(None, expected, 30.0, 50.0)] == [None] * 4
    # HostDown was firing at the recording's start: neither a detection nor unexpected
    assert sorted_alerts(ALERTS, expected_alerts({"alert": "KubeAPIDown"}), 30.0, {"10.0.0.5": "master1"}) == {
        "on_faulted": [], "unexpected": [],
        "before_fault": [{"alert": "HostDown", "labels": {"alertname": "HostDown", "host": "master1"},
                          "firing_at": 0.0, "resolved_at": None, "at_start": True}]}


def fired(name: str, at: float, **labels: str) -> dict:
    return {"alert": name, "labels": {"alertname": name, **labels}, "firing_at": at, "resolved_at": None,
            "at_start": False}


def test_alerts_are_sorted_by_what_they_are_about():
    """An alert on a faulted host is a detection of the fault, one already firing before it is
    neither, and only the rest is unexpected; the declared ones are judged apart."""
    faulted = {"10.224.0.11": "master1", "10.224.0.12": "worker1", "10.224.0.13": None}
    alerts = [fired("KubeAPIDown", 33.0), fired("HostDown", 35.0, host="master1", instance="10.224.0.11:9100"),
              fired("KubeletRestarted", 36.0, instance="10.224.0.12:10250", job="kubelet"),
              fired("KubeNodeNotReady", 40.0, node="worker1"), fired("EtcdNoLeader", 41.0, instance="10.224.0.13:2379"),
              fired("HostDown", 37.0, host="worker2", instance="10.224.0.14:9100"),
              fired("MachineCPUSaturated", 20.0), fired("HostDiskNearlyFull", 31.0, host="worker2"),
              {**fired("KubeAPIDown", 0.5), "at_start": True},
              {**fired("Watchdog", 0.0), "firing_at": None}]  # pending only: never fired
    found = sorted_alerts(alerts, expected_alerts([{"alert": "KubeAPIDown"}]), 30.0, faulted)
    assert [(a["alert"], a["target"], a["seconds_to_detect"]) for a in found["on_faulted"]] == [
        ("HostDown", "master1", 5.0), ("KubeletRestarted", "worker1", 6.0), ("KubeNodeNotReady", "worker1", 10.0),
        ("EtcdNoLeader", "10.224.0.13", 11.0)]
    assert [a["alert"] for a in found["before_fault"]] == ["MachineCPUSaturated", "KubeAPIDown"]
    assert [(a["alert"], a["labels"].get("host")) for a in found["unexpected"]] == [
        ("HostDown", "worker2"), ("HostDiskNearlyFull", "worker2")]
    # an IPv6 instance names its address in brackets
    assert sorted_alerts([fired("HostDown", 31.0, instance="[fd00::5]:9100")], [], 30.0,
                         {"fd00::5": "host5"})["on_faulted"][0]["target"] == "host5"
    # no fault: nothing was faulted, nothing detected it
    assert [a["alert"] for a in sorted_alerts(alerts, [], None, faulted)["unexpected"]] == [
        a["alert"] for a in alerts[:8]]


def test_the_recorder_keeps_each_alert_s_life_on_its_clock_and_no_annotation():
    recorder = Recorder(lambda: None, Scope(()), alert_source=lambda: [])
    recorder._started = time.monotonic()  # as start() does, without its watches
    api_down = {"labels": {"alertname": "KubeAPIDown"}, "activeAt": "2026-01-01T00:00:01Z", "state": "pending"}
    old = {"labels": {"alertname": "HostDown", "host": "a"}, "activeAt": "2025-12-31T23:00:00Z", "state": "firing"}
    for poll, polled in enumerate(([old], [old, api_down], [old, {**api_down, "state": "firing"}], [old])):
        recorder._alerts_seen(polled, first=poll == 0)
        time.sleep(0.01)  # the polls are a second apart: here 10 ms, above the clock's 1 ms
    down, api = recorder.recording()["alerts"]
    assert down["at_start"] and down["firing_at"] >= 0 and down["pending_at"] is None and down["resolved_at"] is None
    assert not api["at_start"] and 0 <= api["pending_at"] < api["firing_at"] < api["resolved_at"] < 1
    assert api["active_at"] == "2026-01-01T00:00:01Z"  # Prometheus's own, as it gave it
    timeline = recorder.recording()["timeline"]
    assert [(e["alert"], e["what"]) for e in timeline] == [
        ("HostDown", "firing"), ("KubeAPIDown", "pending"), ("KubeAPIDown", "firing"), ("KubeAPIDown", "resolved")]
    # one clock: each moment of the alert is its timeline entry's t
    assert [e["t"] for e in timeline[1:]] == [api["pending_at"], api["firing_at"], api["resolved_at"]]
    assert "annotations" not in json.dumps(recorder.recording())


def test_an_older_journal_s_iso_alert_times_are_read_on_the_recording_s_clock():
    journal = monitored_journal([{"alert": "KubeAPIDown", "within_seconds": 20}])
    recording = journal["extensions"][0]["recording"]
    started = dt.datetime.fromisoformat(recording["started_at"])
    [old] = [a for a in recording["alerts"] if a["alert"] == "KubeAPIDown" and a["firing_at"]]
    assert isinstance(old["firing_at"], str)  # written by a chaosali of ISO times
    run = read_run(journal)
    [alert] = [a for a in run.recording.alerts if a["alert"] == "KubeAPIDown" and a["firing_at"] is not None]
    assert alert["firing_at"] == round((dt.datetime.fromisoformat(old["firing_at"]) - started).total_seconds(), 3)
    assert alert["active_at"] == old["active_at"]
    # the same journal on the one clock judges the same
    for a in recording["alerts"]:
        a.update({m: run.recording.t(dt.datetime.fromisoformat(a[m])) if a[m] else None for m in ALERT_MOMENTS})
    assert read_run(journal).detections == run.detections


# -- unit: the report ------------------------------------------------------------------------------


def test_a_detected_alert_is_reported_with_its_time_to_detect():
    run = read_run(monitored_journal([{"alert": "KubeAPIDown", "within_seconds": 20}]))
    [detected] = run.detections
    assert detected["met"] is True and 0 < detected["seconds_to_detect"] < 20
    assert run_verdict(run) == "ok"
    text = render([run], "text")
    assert "alert KubeAPIDown fires within 20 s: fired 3.06 s after the fault started" in text
    # the journal of a chaosali that did not record the faulted hosts: every other alert is unexpected
    assert "unexpected: EtcdMemberDown (master1), HostDown (master1)" in text
    figures = json.loads(render([run], "json"))["runs"][0]
    assert figures["detections"][0]["seconds_to_detect"] == detected["seconds_to_detect"]
    assert {a["alert"] for a in figures["unexpected_alerts"]} == {"EtcdMemberDown", "HostDown"}


def test_alerts_on_the_cut_master_are_detections_of_the_cut_not_unexpected():
    """master-netcut's report listed EtcdMemberDown and HostDown on master1, the cut host, as
    unexpected; the impact control now records the faulted hosts, and they detected the fault."""
    journal = monitored_journal([{"alert": "KubeAPIDown", "within_seconds": 20}])
    journal["extensions"][0]["recording"]["faulted_hosts"] = {"10.224.0.11": "master1"}
    run = read_run(journal)
    for fmt in ("text", "markdown", "html"):
        out = render([run], fmt)
        assert ("alerts that detected the fault (time to detect): KubeAPIDown 3.06 s (declared: ok), "
                "EtcdMemberDown on master1 5.08 s, HostDown on master1 5.08 s; already firing before the fault: none; "
                "unexpected: none") in out, fmt
    figures = json.loads(render([run], "json"))["runs"][0]
    assert figures["unexpected_alerts"] == [] and figures["alerts_before_the_fault"] == []
    assert [(a["alert"], a["target"], a["seconds_to_detect"]) for a in figures["alerts_on_faulted_hosts"]] == [
        ("EtcdMemberDown", "master1", 5.081), ("HostDown", "master1", 5.081)]
    # the declared alert keeps its verdict, and the score is what it was
    assert run.detections == read_run(monitored_journal([{"alert": "KubeAPIDown", "within_seconds": 20}])).detections
    assert run_verdict(run) == "ok" and run.score == 100


def test_the_run_judges_its_alerts_as_the_report_does_without_the_report():
    """The impact control judged the declared alerts by importing the report's reading of the
    journal (an arrow back up); now both judge them from the recording's own fault starts and ends
    and the FMEA's declared alerts, whatever else the FMEA holds."""
    journal = monitored_journal([{"alert": "KubeAPIDown", "within_seconds": 20}, {"alert": "NoSuchAlert"}])
    entry = journal["extensions"][0]
    recording, run = entry["recording"], read_run(journal)
    [cut] = run.faults  # as the run now records it: on the recording's clock, alerts included
    recording.update(alerts=run.recording.alerts, fault_starts={cut.fault_id: run.recording.t(cut.start)},
                     fault_ends={cut.fault_id: run.recording.t(cut.end)})
    for fmea in (journal["experiment"]["extensions"][0]["fmea"], {}):
        fmea.pop("severity", None)  # the second time round: an FMEA the report cannot use, its detection kept
        journal["deviated"] = False
        judged = controls._judge_detection(journal, recording)
        assert [(d["alert"], d["met"]) for d in judged] == [("KubeAPIDown", True), ("NoSuchAlert", False)]
        assert judged == read_run(journal).detections and journal["deviated"] is True
    assert read_run(journal).fmea is None and run_verdict(read_run(journal)) == "NOT DETECTED"


def test_an_alert_that_never_fired_is_not_detected_in_every_format_and_in_the_score():
    detected = read_run(monitored_journal([{"alert": "KubeAPIDown", "within_seconds": 20}]))
    run = read_run(monitored_journal([{"alert": "KubeAPIDown", "within_seconds": 20}, {"alert": "NoSuchAlert"}]))
    assert run_verdict(run) == "NOT DETECTED"
    assert run.score < detected.score
    assert "expectations: NOT DETECTED" in render([run], "text")
    assert "NOT DETECTED: NoSuchAlert did not fire" in render([run], "markdown")
    assert "NOT DETECTED" in render([run], "html")
    assert json.loads(render([run], "json"))["summary"]["not_detected"] == 1
    cases = ET.fromstring(render([run], "junit")).iter("testcase")
    failed = {case.get("name") for case in cases if case.find("failure") is not None}
    assert failed == {"alert NoSuchAlert fires"}


def test_a_plain_name_is_not_judged_and_a_journal_without_alerts_judges_nothing():
    assert read_run(monitored_journal("api-ready")).detections == []
    journal = monitored_journal({"alert": "KubeAPIDown"})
    del journal["extensions"][0]["recording"]["alerts"]
    [unjudged] = read_run(journal).detections
    assert unjudged["met"] is None and "no Prometheus" in unjudged["why"]


# -- unit: the client's arguments and the lab's configuration ---------------------------------------


def test_the_client_refuses_incomplete_or_unknown_credentials():
    with pytest.raises(InvalidArgument, match="prometheus_url"):
        client(None, 5, {}, {})
    with pytest.raises(InvalidArgument, match="both username and password"):
        client("https://127.0.0.1:9090", 5, {}, {"username": "u"})
    with pytest.raises(InvalidArgument, match="unknown Prometheus secrets pass"):
        client("https://127.0.0.1:9090", 5, {}, {"pass": "x"})
    with pytest.raises(InvalidArgument, match="client_cert and client_key"):
        client("https://127.0.0.1:9090", 5, {}, {"client_cert": "/nonexistent"})
    assert "secret" not in repr(client("https://127.0.0.1:9090", 5, {}, {"username": "u", "password": "secret"}))


@pytest.mark.skipif(not shutil.which("promtool") or not shutil.which("prometheus-blackbox-exporter"),
                    reason="promtool and the blackbox exporter are Debian's packages (scripts/setup)")
def test_the_lab_s_prometheus_configuration_and_rules_pass_promtool(tmp_path):
    make_pki(tmp_path / "pki", ["10.0.0.11"])
    worker = LabHost("worker1", "10.0.0.13", "x-worker1", "worker")
    hosts = [LabHost("master1", "10.0.0.11", "x-master1", "master"), worker,
             LabHost("monitor1", "10.0.0.12", "x-monitor1", "monitor")]
    for kubelets, jobs in (([worker], ["kubelet"]), ([], [])):  # kwok workers serve no kubelet metrics
        Monitoring(tmp_path / "monitoring", tmp_path / "pki", hosts, kubelets).prepare()
        for check in (["check", "config", "prometheus.yml"], ["check", "web-config", "web.yml"]):
            result = subprocess.run(["promtool", *check], cwd=tmp_path / "monitoring", capture_output=True, text=True)
            assert result.returncode == 0, result.stdout + result.stderr
        config = yaml.safe_load((tmp_path / "monitoring" / "prometheus.yml").read_text())
        scraped = [job for job in config["scrape_configs"] if job["job_name"] == "kubelet"]
        assert [job["job_name"] for job in scraped] == jobs
        # the kubelet's certificate is verified (the lab's CA), and it is shown the admin's
        assert all(job["static_configs"][0]["targets"] == ["10.0.0.13:10250"] and "insecure_skip_verify" not in
                   job["tls_config"] and job["tls_config"]["cert_file"].endswith("admin.crt") for job in scraped)
        # the cluster DNS is asked on each worker's port 53, by the blackbox exporter of the monitoring host
        [probed] = [job for job in config["scrape_configs"] if job["job_name"] == "cluster-dns"]
        assert probed["static_configs"] == [{"targets": ["10.0.0.13:53"], "labels": {"host": "worker1"}}]
        assert probed["relabel_configs"][-1]["replacement"] == "10.0.0.12:9115"
    checked = subprocess.run(["prometheus-blackbox-exporter", "--config.check", "--config.file=blackbox.yml"],
                             cwd=tmp_path / "monitoring", capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool comes with Debian's prometheus (scripts/setup)")
def test_promtool_a_saturated_host_a_full_disk_and_a_restarted_kubelet_one_alert_each_dns_when_all_fail(
        tmp_path):
    make_pki(tmp_path / "pki", ["10.0.0.11"])
    Monitoring(tmp_path, tmp_path / "pki", [LabHost("monitor1", "10.0.0.12", "x-monitor1", "monitor")]).prepare()
    summary = {rule["alert"]: rule["annotations"]["summary"] for rule in RULES}
    # worker1's CPU never idle; worker2's and the master's idle all the time (each host counts its own
    # CPUs; worker2's exporter lists a cpu0 that never counts, as lxcfs's /proc/stat of cpu1 makes it)
    busy = [{"series": f'node_cpu_seconds_total{{mode="{mode}",cpu="{cpu}",host="{host}"}}', "values": values}
            for host, cpus, idle in (("master1", (0, 1), True), ("worker1", (0,), False), ("worker2", (1,), True))
            for cpu in cpus for mode, values in (("idle", "0+1x60" if idle else "0+0x60"),
                                                 ("user", "0+0x60" if idle else "0+1x60"))]
    busy += [{"series": f'node_cpu_seconds_total{{mode="{mode}",cpu="0",host="worker2"}}', "values": "0x60"}
             for mode in ("idle", "user")]
    disk = [{"series": f'node_filesystem_{metric}{{host="worker1",mountpoint="{mount}",device="{device}"}}',
             "values": value} for mount, readonly in (("/var/lib/kubelet", "0"), ("/ro", "1"))
            for device in ("/dev/vda", "lab-kubelet")  # a bind mount is listed under both devices
            for metric, value in (("avail_bytes", "5x60"), ("size_bytes", "64x60"), ("readonly", f"{readonly}x60"))]
    # worker1's kubelet started again at 10 s (its host rebooted), worker2's did not
    kubelets = [{"series": f'process_start_time_seconds{{job="kubelet",host="{host}"}}', "values": values}
                for host, values in (("worker1", "100x9 110x50"), ("worker2", "100x60"))]
    # worker1's DNS stops answering at 10 s, worker2's at 20 s: the cluster DNS is down when both are
    probes = [{"series": f'probe_success{{job="cluster-dns",host="{host}"}}', "values": values}
              for host, values in (("worker1", "1x9 0x50"), ("worker2", "1x19 0x40"))]
    (tmp_path / "test.yml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yml"], "evaluation_interval": "1s",
        "tests": [{"interval": "1s", "input_series": busy + disk + kubelets + probes, "alert_rule_test": [
            {"eval_time": "18s", "alertname": "ClusterDNSDown", "exp_alerts": []},  # worker2 answers
            {"eval_time": "21s", "alertname": "ClusterDNSDown", "exp_alerts": []},  # pending: its `for:`
            {"eval_time": "23s", "alertname": "ClusterDNSDown", "exp_alerts": [
                {"exp_labels": {"severity": "critical"}, "exp_annotations": {"summary": summary["ClusterDNSDown"]}}]},
            {"eval_time": "5s", "alertname": "KubeletRestarted", "exp_alerts": []},
            {"eval_time": "20s", "alertname": "KubeletRestarted", "exp_alerts": [
                {"exp_labels": {"severity": "warning", "host": "worker1", "job": "kubelet"},
                 "exp_annotations": {"summary": "kubelet on worker1 restarted"}}]},
            {"eval_time": "75s", "alertname": "KubeletRestarted", "exp_alerts": []},  # a minute on
            {"eval_time": "40s", "alertname": "HostCPUSaturated", "exp_alerts": [
                {"exp_labels": {"severity": "warning", "host": "worker1"},
                 "exp_annotations": {"summary": "the CPUs of worker1 are saturated"}}]},
            {"eval_time": "10s", "alertname": "HostDiskNearlyFull", "exp_alerts": [
                {"exp_labels": {"severity": "warning", "host": "worker1", "mountpoint": "/var/lib/kubelet"},
                 "exp_annotations": {"summary": "/var/lib/kubelet on worker1 is nearly full"}}]},
        ]}]}))
    result = subprocess.run(["promtool", "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- lab: a real Prometheus ---------------------------------------------------------------------------


def prometheus_access(monitored) -> tuple[dict, dict]:
    variables = json.loads(monitored.lab.vars_path.read_text())
    return variables["configuration"], variables["secrets"]["prometheus"]


def test_lab_status_and_vars_show_the_monitoring(monitored):
    configuration, scope = prometheus_access(monitored)
    assert configuration["prometheus_url"] == monitored.monitoring.prometheus_url
    assert set(scope) == {"username", "password", "ca_bundle"}
    status = monitored.status()
    assert status["monitoring"]["prometheus"] == configuration["prometheus_url"]
    assert status["monitoring"]["scraping_the_api"] is True
    assert {"prometheus", "alertmanager"} <= set(status["services"]["monitor1"])
    assert all(services.get("node-exporter") == "active" for services in status["services"].values())


def test_query_over_tls_with_basic_auth_and_a_clear_401(monitored):
    configuration, scope = prometheus_access(monitored)
    assert query('up{job="kube-apiserver"}', configuration=configuration, secrets=scope) == 1.0
    ups = query("up", configuration=configuration, secrets=scope)
    assert {sample["labels"]["job"] for sample in ups} >= {"kube-apiserver", "etcd", "kube-controller-manager",
                                                          "kube-scheduler", "node", "prometheus"}
    assert all(sample["value"] == 1.0 for sample in ups)
    wrong = {**scope, "password": "not-the-password"}
    with pytest.raises(ActivityFailed) as refused:
        query("up", configuration=configuration, secrets=wrong)
    assert str(refused.value).startswith(f"Prometheus at {configuration['prometheus_url']}: HTTP 401")
    assert "not-the-password" not in str(refused.value)
    with pytest.raises(ActivityFailed, match="TLS failed"):  # the lab's CA is needed
        query("up", configuration=configuration, secrets={k: v for k, v in scope.items() if k != "ca_bundle"})


def test_prometheus_scrapes_the_real_kubelets_and_sees_one_stop(monitored):
    configuration, scope = prometheus_access(monitored)
    kubelets = monitored.monitoring.kubelets
    if not kubelets:
        pytest.skip("the monitored lab's workers are kwok: no kubelet to scrape")
    # the kubelet checks the client's certificate against the lab's CA and Prometheus the kubelet's:
    # a refused or unverified scrape is a target down, with its error
    scraped = wait_until(lambda: query('sum(up{job="kubelet"})', configuration=configuration, secrets=scope)
                         == len(kubelets), 30, step=1)
    assert scraped is not None, query('up{job="kubelet"}', configuration=configuration, secrets=scope)
    # each kubelet's own metrics: the node it serves, and its count of running pods
    for host in kubelets:
        assert query(f'kubelet_node_name{{job="kubelet",host="{host.name}",node="{host.name}"}}',
                     configuration=configuration, secrets=scope) == 1.0
        running = query(f'kubelet_running_pods{{host="{host.name}"}}', configuration=configuration, secrets=scope)
        assert isinstance(running, float) and running >= 0
    # a stopped kubelet fires KubeletDown in seconds, well inside the node's grace (it stays Ready)
    variables = json.loads(monitored.lab.vars_path.read_text())
    chaos = {"configuration": variables["configuration"], "secrets": variables["secrets"]["ssh"]}
    worker = kubelets[0]
    stopped = actions.stop_service([worker.address], service="kubelet", duration=20, **chaos)
    try:
        fired = wait_until(lambda: alerts_firing(["KubeletDown"], {"host": worker.name},
                                                 configuration=configuration, secrets=scope)["count"], 15, step=0.5)
    finally:
        actions.restore_faults([worker.address], fault_id=stopped["fault_id"], **chaos)
    assert fired is not None, "KubeletDown did not fire within 15 s of the kubelet's stop"
    print(f"\nKubeletDown fired {fired:.1f} s after the kubelet stopped")
    assert wait_until(lambda: alerts_firing(["KubeletDown"], configuration=configuration, secrets=scope)["count"] == 0,
                      30, step=1) is not None


def test_a_bad_expression_gets_prometheus_s_own_error(monitored):
    configuration, scope = prometheus_access(monitored)
    with pytest.raises(ActivityFailed, match=r"HTTP 400: .*parse error"):
        query("sum(up", configuration=configuration, secrets=scope)


def test_unreachable_and_timeout_name_the_address(monitored):
    _, scope = prometheus_access(monitored)
    closed = f"https://{monitored.monitoring.host.address}:9"
    with pytest.raises(ActivityFailed, match=f"Prometheus at {closed}: connection failed"):
        query("up", url=closed, secrets=scope)
    silent = "https://10.242.0.250:9090"  # in the lab's range, on no host: no connection
    with pytest.raises(ActivityFailed, match=f"Prometheus at {silent}: no connection within 1 s"):
        query("up", url=silent, timeout=1, secrets=scope)


# -- lab: every shipped drill the monitored lab runs, one after another (``forward``, conftest.py) ----

def test_the_sequence_is_every_shipped_drill_the_monitored_lab_runs_in_file_order():
    shipped = sorted(path.name for path in (REPO / "experiments").glob("*.json"))
    assert list(SEQUENCE) == [name for name in shipped if name not in ON_OTHER_LABS]


def test_every_drill_ends_with_the_same_verdict_in_either_order(forward, reverse):
    """Every shipped drill, run as a user runs them one after another on one lab, in file order and
    then in the reverse order: each judged the same (the report's word and chaos run's deviated), so
    that its verdict is about the system under test, not about where the drill before it left the lab."""
    def outcome(drill: Drill) -> tuple[str, str, bool]:
        return drill.verdict, drill.journal["status"], drill.journal["deviated"]

    for name in SEQUENCE:
        print(f"\n{name}: {forward[name].verdict} in {forward[name].seconds:.0f} s, "
              f"then {reverse[name].verdict} in {reverse[name].seconds:.0f} s")
    differ = [name for name in SEQUENCE if outcome(forward[name]) != outcome(reverse[name])]
    assert differ == [], "\n".join(
        f"{name}: in file order {outcome(forward[name])}, in reverse order {outcome(reverse[name])}"
        + "".join(f"\n  {order} order: " + ("\n    ".join(failing_checks(runs[name].journal)) or "nothing failed")
                  for order, runs in (("file", forward), ("reverse", reverse)))
        for name in differ)


def test_a_master_cut_fires_the_api_down_alert_in_time(forward):
    journal = forward["master-netcut.json"].journal
    impact = impact_of(journal)
    [detected] = impact["detections"]
    assert detected["alert"] == "KubeAPIDown" and detected["met"] is True
    assert 0 < detected["seconds_to_detect"] <= 20 and detected["seconds_to_resolve"] is not None
    assert journal["deviated"] is False
    text = render([read_run(journal)], "text")
    # in the report's own words: a whole second (Prometheus evaluates on whole seconds) reads "4 s"
    assert f"fired {seconds_text(detected['seconds_to_detect'])} after the fault started" in text
    # the alert's whole life is in the recording; no annotation is
    lives = [a for a in impact["recording"]["alerts"] if a["alert"] == "KubeAPIDown" and a["firing_at"]]
    assert lives and lives[0]["pending_at"] and lives[0]["resolved_at"]
    assert "annotations" not in json.dumps(impact["recording"])
    # the cut master's own alerts detected the cut: none of them is unexpected
    master = outputs(journal)["cut-master-network"]["hosts"][0]["address"]
    assert impact["recording"]["faulted_hosts"] == {master: "master1"}
    alerts = read_run(journal).alerts
    assert "HostDown" in {a["alert"] for a in alerts["on_faulted"] if a["target"] == "master1"}, alerts
    assert not [a for a in alerts["unexpected"] if a["labels"].get("host") == "master1"], alerts
    assert "KubeAPIDown" not in forward["master-netcut.json"].seen["firing"]  # resolved by the drill's end


def assert_declared_alerts_fired_in_time(journal: dict, labels: dict[str, dict]) -> None:
    """Every alert the drill's FMEA declares fired within its limit, as one series of the labels
    given (the faulty host's): the drill passed, judged by its monitoring too."""
    assert passed(journal)
    impact = impact_of(journal)
    declared = expected_alerts(next(e for e in journal["experiment"]["extensions"]
                                    if e.get("name") == "chaosali")["fmea"]["detection"])
    assert [d["alert"] for d in impact["detections"]] == [d["alert"] for d in declared] == list(labels)
    for detected, expected in zip(impact["detections"], declared):
        assert detected["met"] is True and 0 < detected["seconds_to_detect"] <= expected["within_seconds"], detected
        want = labels[detected["alert"]]
        fired = [a["labels"] for a in impact["recording"]["alerts"] if a["alert"] == detected["alert"]
                 and a["firing_at"] is not None and a["labels"].get("host") == want.get("host")]
        # one series, of the faulty host; it may fire twice: the lab's other work, on the same CPU, took
        # worker1's load under HostCPUSaturated's threshold for a moment once (a CI run beside two labs)
        assert len({json.dumps(series, sort_keys=True) for series in fired}) == 1, fired
        assert want.items() <= fired[0].items(), fired
        print(f"\n{journal['experiment']['title'][:40]}: {detected['alert']} fired {detected['seconds_to_detect']:.2f} s "
              f"after the fault, resolved {detected['seconds_to_resolve']} s after the heal (None: not in the recording)")


@pytest.mark.parametrize("experiment, labels", [
    ("disk-full.json", {"HostDiskNearlyFull": {"host": "worker1", "mountpoint": "/var/lib/kubelet"}}),
    ("apiserver-crash.json", {"ControlPlaneRestarted": {"host": "master1", "job": "kube-apiserver"}}),
    ("etcd-hang.json", {"EtcdMemberDown": {"host": "master1", "job": "etcd"}, "KubeAPIDown": {}}),
])
def test_the_shipped_drills_declare_alerts_the_lab_raises_in_time(forward, experiment, labels):
    journal = forward[experiment].journal
    assert_declared_alerts_fired_in_time(journal, labels)
    # each fault proven by more than the impact recording
    assert any(entry["what"] != "the impact recording" for entry in fault_proven(journal)["evidence"])


def monitored_kube(monitored) -> KubeAccess:
    return KubeAccess(monitored.admin_kubeconfig, monitored.readonly_kubeconfig, monitored.lab)


def test_dns_outage_drill_names_stop_resolving_during_the_cut_and_resolve_after_and_its_alert_fires(
        monitored, forward):
    """The cluster DNS's port 53 dropped on its hosts (12 s): the names stop resolving and come back,
    and the blackbox probe from the monitoring host, through the cut, fires ClusterDNSDown in time."""
    kube = monitored_kube(monitored)
    servers = sorted(h.address for h in dns_hosts(kube))
    journal = forward["dns-outage.json"].journal
    assert_declared_alerts_fired_in_time(journal, {"ClusterDNSDown": {}})
    out = {run["activity"]["name"]: run for run in journal["run"]}
    assert sorted(h["address"] for h in out["cut-dns"]["output"]["hosts"]) == servers

    during = out["names-fail-during-the-outage"]["output"]
    assert during["proved"] is True and sorted(h["address"] for h in during["hosts"]) == servers
    for host in during["hosts"]:
        assert "Timeout" in host["names"][dns.CHECK_NAME + "."]["error"], host
    after = out["names-resolve-after-the-outage"]["output"]
    assert after["proved"] is True
    assert all(host["names"][dns.CHECK_NAME + "."] == {"addresses": RESOLVED} for host in after["hosts"])
    # back when the hosts healed on their own timer (12 s), not at once: resolution really stopped
    assert 1 <= after["seconds"] <= 12 + 10

    steady = hypothesis_after(journal)
    assert steady["dns-answers"]["output"]["proved"] is True
    [names_failed] = [e for e in fault_proven(journal)["evidence"] if e["what"].startswith("names failing")]
    assert names_failed["seen"] is True and names_failed["expected"] is True
    for server in dns_hosts(kube):
        assert answers(monitored.lab.hosts[0], server) == ANSWERING


def test_node_high_load_alerts_for_the_loaded_worker_alone_and_its_replica_is_the_slower(monitored, forward):
    """Each worker has a CPU of its own: the load of worker1 (helpers.SEQUENCE) fires HostCPUSaturated
    for worker1 alone, in time, and the report lists each replica (through its own worker's NodePort of
    web-local), every request answered."""
    if not monitored.monitoring.kubelets:
        pytest.skip("the monitored lab's workers are kwok: no replica runs for real")
    journal = forward["node-high-load.json"].journal
    assert_declared_alerts_fired_in_time(journal, {"HostCPUSaturated": {"host": "worker1"}})
    impact = impact_of(journal)
    assert {a["labels"].get("host") for a in impact["recording"]["alerts"]
            if a["alert"] == "HostCPUSaturated" and a["firing_at"] is not None} == {"worker1"}
    hosts = {h.name: h.address for h in monitored.lab.hosts}
    loaded, other = (f"http://{hosts[name]}:{WEB_LOCAL_NODE_PORT}/" for name in ("worker1", "worker2"))
    http = impact["measures"]["http"]
    assert http[loaded]["availability"] == http[other]["availability"] == 100, http
    # which replica is the slower is asserted on the cluster lab (test_drills): here the other drills'
    # sessions load the machine as much as the drill loads worker1
    table = render([read_run(journal)], "text")
    assert loaded in table and other in table and "p50 / p95 during the fault" in table
    # each replica's latency under the load (20 s at the recorder's 5 a second), beside the whole recording's
    assert all(http[url]["during_fault"]["samples"] >= 40 for url in (loaded, other)), http
    assert f"({http[loaded]['during_fault']['samples']} samples)" in table
    print(f"\nnode-high-load: web p50 during the load of worker1's replica {1000 * http[loaded]['during_fault']['p50']:.1f} ms, "
          f"worker2's {1000 * http[other]['during_fault']['p50']:.1f} ms")


def test_node_reboot_proves_a_new_boot_and_the_kubelet_s_restart_is_alerted(monitored, forward):
    """On a real worker a reboot ends every container of the host; the recorder sees them end and
    return (the kubelet's reports, a second or two after the host is back), and measures the impact
    the FMEA expects; the kubelet's new start time fires KubeletRestarted (its host is back in
    seconds: too soon for KubeletDown or HostDown to fire)."""
    if not monitored.monitoring.kubelets:
        pytest.skip("the monitored lab's workers are kwok: no kubelet to restart or to scrape")
    journal = forward["node-reboot.json"].journal
    reboot = outputs(journal)["reboot-a-worker"]
    rebooted, node = reboot["hosts"][0], reboot["targets"]["hosts"][0]["name"]
    assert_declared_alerts_fired_in_time(journal, {"KubeletRestarted": {"host": node, "job": "kubelet"}})
    proof = hypothesis_after(journal)["host-rebooted"]["output"]
    assert proof["proved"] is True
    proof = proof["rebooted"]
    assert [entry["address"] for entry in proof] == [rebooted["address"]]
    assert proof[0]["boot_before"] == rebooted["boot_before"] != proof[0]["boot_after"]
    assert 0 < proof[0]["answered_after_seconds"] < 30
    # every process of the host is younger than the drill: it really rebooted, and booted again
    ages = forward["node-reboot.json"].seen["ages"]
    assert ages and [line for line in ages if int(line.split()[0]) >= 60] == [], "\n".join(ages)
    assert any(line.split()[1] == kubelet_process(monitored.lab) for line in ages)
    measures = impact_of(journal)["measures"]
    assert measures["pods_lost"] == 0
    # the replica on the other worker kept serving: the workload never went down
    assert measures["workloads"]["Deployment demo/web"]["min_ready"] >= 1
    # real containers: they end, and start again
    timeline = impact_of(journal)["recording"]["timeline"]
    web = lambda what: {e["pod"] for e in timeline if e["what"] == what and e["node"] == node
                        and e["pod"].startswith("demo/web-")}
    assert web("container-ended") and web("container-ended") == web("container-started"), timeline
    ended = next(e for e in timeline if e["what"] == "container-ended" and e["node"] == node)
    assert ended["finished_at"] and ended["reason"], ended  # when and how, as the kubelet tells it
    assert measures["impact"] == "partial"
    assert read_run(journal).recovery.exceeded is False  # judged from what recovered, in time


def test_zone_outage_keeps_the_workload_available_from_the_other_zone_and_its_alerts_fire(forward):
    planned, plan = forward["zone-outage.json"].seen["plan"]
    assert planned.returncode == 0, planned.stderr
    journal = forward["zone-outage.json"].journal
    worker = {"host": "worker1"}
    assert_declared_alerts_fired_in_time(journal, {"HostDown": {**worker, "job": "node"},
                                                   "KubeletDown": {**worker, "job": "kubelet"},
                                                   "KubeNodeNotReady": {}})
    assert_plan_agrees(plan, journal)
    out = outputs(journal)
    assert [h["name"] for h in out["cut-the-zone"]["targets"]["hosts"]] == ["worker1"]
    assert out["zone-nodes-ready-during-the-outage"] is False
    assert out["other-zone-nodes-ready-during-the-outage"] is True
    assert out["workload-available-from-the-other-zone"]["status"]["availableReplicas"] >= 1
    back = out["zone-nodes-back"]
    assert back["back_at"] and back["last"] is True
    recovery = read_run(journal).recovery  # judged from what recovered: the nodes and the workload, in time
    assert recovery.state == RECOVERED and recovery.exceeded is False, recovery
    print(f"\nzone-a cut for 46 s: its nodes were back Ready at {back['back_at']}")


def test_an_expected_alert_that_does_not_exist_is_not_detected(monitored, tmp_path):
    experiment = json.loads((REPO / "experiments" / "master-netcut.json").read_text())
    experiment["extensions"][0]["fmea"]["detection"] = [{"alert": "NoSuchAlert", "within_seconds": 20}]
    (tmp_path / "undetected.json").write_text(json.dumps(experiment))
    run = chaos_run(tmp_path, str(tmp_path / "undetected.json"), [monitored.lab.vars_path],
                    "--var", "cut_seconds:int=4", "--var", "settle_seconds:int=2")
    journal = journal_of(run, tmp_path)  # asserts that chaos run deviated as the report says
    assert journal["deviated"] is True
    report = read_run(journal)
    assert run_verdict(report) == "NOT DETECTED"
    assert "NOT DETECTED: NoSuchAlert did not fire" in render([report], "text")


def test_a_promql_stop_condition_is_a_probe_condition_on_query():
    from chaosali.safety.conditions import conditions

    [condition] = conditions([{"name": "no critical alert", "interval": 2, "probe": {
        "type": "probe", "name": "critical-alerts", "tolerance": [0, 0],
        "provider": {"type": "python", "module": "chaosali.monitoring.probes", "func": "query",
                     "arguments": {"expression": "count(ALERTS) or vector(0)", "url": "https://127.0.0.1:1",
                                   "timeout": 1}}}}])
    assert condition.kind == "probe" and condition.interval == 2
    with pytest.raises(ActivityFailed, match="Prometheus at https://127.0.0.1:1: connection failed"):
        condition.check({}, {})  # an unreadable Prometheus is a failing check, counted by `failures`

