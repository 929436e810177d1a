"""The impact recorder: what a drill did to pods, workloads, nodes and the API, measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from chaosali.cluster.api import new_api_client
from chaosali.core.errors import InvalidArgument
from chaosali.host.actions import cut_network, restore_network
from chaosali.core import ledger, memory
from chaosali.impact import controls
from chaosali.impact.controls import _http_targets, _judge_to_the_end
from chaosali.impact.measures import http_between, judge, measure
from chaosali.impact.recorder import Recorder, Scope
from helpers import impact_of, wait_until

DEMO = "demo"


# ---- measures (no lab) ---------------------------------------------------------------------------


def entry(t: float, **fields) -> dict:
    return {"at": f"2026-01-01T00:00:{t:06.3f}+00:00", "t": t, **fields}


RECORDING = {
    "started_at": "2026-01-01T00:00:00+00:00",
    "seconds": 60.0,
    "api_outages": [{"from": 10.0, "to": 14.5}],  # on the recording's clock, as every window
    "timeline": [
        entry(0, kind="workload", workload="Deployment demo/web", what="initial", desired=2, ready=2),
        entry(0, kind="node", node="worker1", what="initial", ready=True, taints=[]),
        entry(20, kind="node", node="worker1", what="not-ready"),
        entry(21, kind="node", node="worker1", what="tainted", taint="unreachable"),
        entry(25, kind="pod", pod="demo/web-a", workload="Deployment demo/web", node="worker1", what="deleted",
              reason="taint-based eviction"),
        entry(25.5, kind="workload", workload="Deployment demo/web", what="changed", desired=2, ready=1),
        entry(26, kind="pod", pod="demo/web-c", workload="Deployment demo/web", node=None, what="created"),
        entry(29, kind="pod", pod="demo/web-c", workload="Deployment demo/web", node="worker2", what="ready"),
        entry(29.5, kind="workload", workload="Deployment demo/web", what="changed", desired=2, ready=2),
        entry(40, kind="node", node="worker1", what="ready"),
    ],
    "dropped": 0,
    "errors": [],
}


def test_a_lost_pod_has_its_reason_and_the_time_to_a_ready_replacement() -> None:
    measures = measure(RECORDING, fault_end=35.0)
    web = measures["workloads"]["Deployment demo/web"]
    assert web["pods_lost"] == 1
    assert web["lost"][0] | {} == web["lost"][0] and web["lost"][0]["reason"] == "taint-based eviction"
    assert web["lost"][0]["replacement"] == "demo/web-c"
    assert web["lost"][0]["replaced_after_seconds"] == 4.0
    assert web["seconds_below_desired"] == 4.0 and web["min_ready"] == 1
    assert web["recovered_after_fault_seconds"] == 0.0  # back before the fault ended
    node = measures["nodes"]["worker1"]
    assert node["seconds_not_ready"] == 20.0 and node["taints_seen"] == ["unreachable"]
    assert node["ready_after_fault_seconds"] == 5.0
    assert measures["api_down_seconds"] == 4.5
    assert measures["recovery_seconds"] == 5.0
    assert measures["impact"] == "core"  # the API was down


def test_what_was_already_degraded_when_the_recording_began_is_not_the_drill_s_impact() -> None:
    degraded = dict(RECORDING, api_outages=[], timeline=[
        entry(0, kind="workload", workload="Deployment demo/web", what="initial", desired=2, ready=0),
        entry(0, kind="node", node="worker9", what="initial", ready=False, taints=["unreachable"]),
        entry(30, kind="pod", pod="demo/bare", workload=None, node="worker1", what="deleted", reason="deleted by mistake"),
    ])
    measures = measure(degraded, fault_end=20.0)
    assert measures["workloads"]["Deployment demo/web"]["seconds_below_desired"] == 0
    assert measures["nodes"]["worker9"]["seconds_not_ready"] == 0
    assert measures["pods_lost"] == 1 and measures["pods_deleted_by_mistake"] == 1  # a bare pod counts too
    assert measures["impact"] == "partial"  # the lost pod, not the degraded start


def test_impact_is_partial_without_an_api_outage_and_none_without_change() -> None:
    quiet = dict(RECORDING, api_outages=[])
    assert measure(quiet)["impact"] == "partial"
    assert measure(dict(quiet, timeline=RECORDING["timeline"][:2]))["impact"] == "none"


def test_a_workload_still_short_at_the_end_never_recovered() -> None:
    short = dict(RECORDING, timeline=RECORDING["timeline"][:6])
    measures = measure(short, fault_end=35.0)
    assert measures["workloads"]["Deployment demo/web"]["recovered_after_fault_seconds"] is None
    assert measures["recovery_seconds"] is None
    checks = judge(measures, {"max_recovery_seconds": 60, "max_pods_lost": 1, "max_unavailable_seconds": 10})
    assert [(c["limit"], c["met"]) for c in checks] == [
        ("max_recovery_seconds", False), ("max_pods_lost", True), ("max_unavailable_seconds", False)]


def test_a_failure_streak_is_judged_per_http_target_in_failed_samples_in_a_row() -> None:
    targets = {"web": {"samples": 20, "failures": 4, "longest_streak": 3},
               "api": {"samples": 20, "failures": 1, "longest_streak": 1}}
    measures = measure(dict(RECORDING, http=targets))
    [check] = judge(measures, {"max_failure_streak": 2})
    assert check["measured"] == {"web": 3, "api": 1} and check["met"] is False
    assert judge(measures, {"max_failure_streak": 3})[0]["met"] is True
    with pytest.raises(InvalidArgument, match="max_failure_streak"):
        judge(measures, {"max_failure_streak": 1.5})


def test_http_between_two_readings_measures_only_the_samples_taken_in_between() -> None:
    before = {"http": {"web": {"samples": 4, "failures": 1, "latencies": [0.1, 0.1, 0.1, 2.0]}}}
    during = {"http": {"web": {"samples": 8, "failures": 3, "latencies": [0.1, 0.1, 0.1, 2.0, 0.5, 0.5, 2.0, 2.0]},
                       "new": {"samples": 1, "failures": 0, "latencies": [0.2]}}}
    between = http_between(before, during)
    assert between["web"] == {"samples": 4, "availability": 50.0, "p50": 2.0, "p95": 2.0, "p99": 2.0}
    assert between["new"]["samples"] == 1 and between["new"]["p95"] == 0.2  # a target first read later
    assert http_between(during, during)["web"] == {"samples": 0, "availability": None, "p50": None, "p95": None,
                                                   "p99": None}


def test_a_replica_slowed_by_the_fault_shows_it_during_the_fault_not_diluted_by_the_calm_around_it() -> None:
    calm, slow = [0.002] * 10, [0.009] * 4  # 14 attempts a second apart; the fault from 5 s to 8 s
    recording = dict(RECORDING, fault_starts={"f1": 5.0}, fault_ends={"f1": 8.0}, http={"web": {
        "samples": 14, "failures": 0, "latencies": calm[:5] + slow + calm[5:],
        "latency_at": [float(t) for t in range(14)]}})
    web = measure(recording, fault_end=8.0)["http"]["web"]
    assert web["p50"] == 0.002  # the whole recording's median: the calm
    assert web["during_fault"] == {"samples": 4, "p50": 0.009, "p95": 0.009}
    still_on = measure(recording, fault_end=None)["http"]["web"]["during_fault"]  # no end yet: to the recording's
    assert still_on["samples"] == 9
    old = dict(recording, http={"web": {"samples": 14, "failures": 0, "latencies": calm + slow}})
    assert "during_fault" not in measure(old, fault_end=8.0)["http"]["web"]  # a recording without latency_at
    assert "during_fault" not in measure(dict(recording, fault_starts={}), fault_end=8.0)["http"]["web"]


def test_a_target_failing_before_its_first_answer_is_as_the_drill_found_it_not_its_doing() -> None:
    window = {"from": 0.0, "to": 0.6, "reason": "connection failed: connection refused"}
    later = {"from": 9.0, "to": 9.4, "reason": "HTTP 500"}
    web = measure(dict(RECORDING, http={"web": {"samples": 20, "failures": 5, "failing_at_start": 3,
                                                "longest_streak": 2, "error_windows": [window, later]}}))["http"]["web"]
    assert (web["samples"], web["availability"], web["error_windows"]) == (17, 88.24, [later])
    assert web["failing_at_start"] == 3
    # a first answer only once a fault was on: those failures may be the fault's, and count
    faulted = dict(RECORDING, fault_starts={"f1": 0.5}, http={"web": {"samples": 20, "failures": 5, "failing_at_start": 3,
                                                                     "error_windows": [window, later]}})
    assert measure(faulted)["http"]["web"]["availability"] == 75.0
    assert measure(dict(faulted, fault_starts={"f1": 0.7}))["http"]["web"]["availability"] == 88.24
    never = measure(dict(RECORDING, http={"web": {"samples": 4, "failures": 4, "longest_streak": 4,
                                                  "error_windows": [window]}}))["http"]["web"]
    assert (never["availability"], never["longest_failure_streak"], never["error_windows"]) == (0.0, 4, [window])


def test_limits_are_read_with_the_argument_rules() -> None:
    with pytest.raises(InvalidArgument, match="max_pods_lost 'nan' must be a whole number from 0 to 100000"):
        judge(measure(RECORDING), {"max_pods_lost": "nan"})
    with pytest.raises(InvalidArgument, match="unknown impact limit 'max_pods'"):
        judge(measure(RECORDING), {"max_pods": 1})


def test_max_impact_bounds_the_level_and_a_lower_one_is_met() -> None:
    partial, core = measure(dict(RECORDING, api_outages=[])), measure(RECORDING)
    assert [c["met"] for c in judge(partial, {}, "partial")] == [True]
    assert [c["met"] for c in judge(partial, {}, "core")] == [True]  # lower than expected: met
    [check] = judge(core, {}, "partial")
    assert check == {"limit": "max_impact", "bound": "partial", "measured": "core", "met": False,
                     "means": "the most impact the FMEA expects: none, partial or core"}
    with pytest.raises(InvalidArgument, match="max_impact 'severe' must be one of none, partial, core"):
        judge(partial, {}, "severe")


def test_impact_after_the_last_check_still_deviates_a_run_that_had_passed() -> None:
    # the steady state's last check saw nothing; the API went down during the rollbacks
    journal = {"status": "completed", "deviated": False}
    judged = _judge_to_the_end(journal, measure(RECORDING), {"max_pods_lost": 1}, "partial")
    assert journal["deviated"] is True and judged["within"] is False
    assert [(c["limit"], c["met"]) for c in judged["checks"]] == [("max_pods_lost", True), ("max_impact", False)]
    interrupted = {"status": "interrupted", "deviated": False}  # chaos run said so itself already
    _judge_to_the_end(interrupted, measure(RECORDING), {}, "none")
    assert interrupted["deviated"] is False


# ---- the recorder against the lab's real API server -----------------------------------------------


def web_available(kube) -> bool:
    with new_api_client(kube.admin) as api:
        status = client.AppsV1Api(api).read_namespaced_deployment("web", DEMO).status
    return (status.available_replicas or 0) >= 2 and (status.ready_replicas or 0) >= 2


def web_pods(kube) -> list[str]:
    with new_api_client(kube.admin) as api:
        pods = client.CoreV1Api(api).list_namespaced_pod(DEMO, label_selector="app=web").items
    return sorted(p.metadata.name for p in pods if not p.metadata.deletion_timestamp)


def recorder_for(kube) -> Recorder:
    return Recorder(lambda: new_api_client(kube.admin, retries=0), Scope((DEMO,)))


def test_a_web_that_answers_late_is_recorded_failing_at_start_and_only_its_later_failures_count(kube, http) -> None:
    """As after a rollout the drill's spread control restarted: the new pods are Ready before their
    NodePort answers, and the first samples are refused. The failures after its first answer count."""
    from chaosali.core.http import check
    from chaosali.impact.recorder import HttpTarget

    url = http.url("/late")  # not served yet: 404
    recorder = Recorder(lambda: new_api_client(kube.admin, retries=0), Scope((DEMO,)),
                        http_targets=(HttpTarget("web", *check(url, timeout=1), rate=20),))
    recorder.start()
    try:
        assert wait_until(lambda: recorder.recording()["http"]["web"]["failures"] >= 3, 10)
        http.serve("/late", b"ok")
        assert wait_until(lambda: recorder.recording()["http"]["web"]["failing_at_start"], 10)
        http.serve("/late", b"down", status=500)
        assert wait_until(lambda: recorder.recording()["http"]["web"]["samples"]
                          - recorder.recording()["http"]["web"]["failures"] >= 1, 10)
        failed = recorder.recording()["http"]["web"]["failures"]
        assert wait_until(lambda: recorder.recording()["http"]["web"]["failures"] >= failed + 2, 10)
    finally:
        recorder.stop()
    recorded = recorder.recording()["http"]["web"]
    web = measure(recorder.recording())["http"]["web"]
    assert recorded["failing_at_start"] >= 3 and web["failing_at_start"] == recorded["failing_at_start"]
    assert web["samples"] == recorded["samples"] - recorded["failing_at_start"]
    assert 0 < web["availability"] < 100 and web["longest_failure_streak"] >= 2
    assert [w["reason"][:8] for w in web["error_windows"]] == ["HTTP 500"], web["error_windows"]


def test_a_pod_deleted_during_the_recording_is_lost_by_mistake_and_replaced(kube) -> None:
    assert wait_until(lambda: web_available(kube), 60)
    recorder = recorder_for(kube)
    recorder.start()
    try:
        victim = web_pods(kube)[0]
        with new_api_client(kube.admin) as api:
            client.CoreV1Api(api).delete_namespaced_pod(victim, DEMO, grace_period_seconds=0)
        assert wait_until(lambda: victim not in web_pods(kube) and web_available(kube), 60)
        wait_until(lambda: measure(recorder.recording())["workloads"]["Deployment demo/web"]["lost"]
                   and measure(recorder.recording())["workloads"]["Deployment demo/web"]["lost"][0][
                       "replaced_after_seconds"] is not None, 20)
    finally:
        recorder.stop()
    measures = measure(recorder.recording())
    web = measures["workloads"]["Deployment demo/web"]
    assert [(pod["pod"], pod["reason"]) for pod in web["lost"]] == [(f"{DEMO}/{victim}", "deleted by mistake")]
    assert web["lost"][0]["replaced_after_seconds"] is not None and web["lost"][0]["replaced_after_seconds"] > 0
    assert measures["api_down_seconds"] == 0 and measures["impact"] in ("partial", "core")
    assert "nginx" not in json.dumps(recorder.recording())  # names and states only, never a spec


def test_a_master_cut_is_an_api_outage_and_the_watches_resume_after_it(kube) -> None:
    variables = json.loads(Path(kube.lab.vars_path).read_text())
    chaos = {"configuration": variables["configuration"], "secrets": variables["secrets"]["ssh"]}
    master = kube.lab.hosts[0].address
    recorder = recorder_for(kube)
    recorder.start()
    try:
        cut_network([master], duration=6, **chaos)
        assert wait_until(lambda: recorder.recording()["api_outages"], 20), "no outage recorded"
        assert wait_until(lambda: recorder.recording()["api_outages"][-1]["to"], 30), "the API never came back"
        restore_network([master], **chaos)  # already healed by its timer: restoring nothing is harmless
        with new_api_client(kube.admin) as api:
            client.CoreV1Api(api).create_namespaced_config_map(DEMO, {"metadata": {"name": "after-the-cut"}})
            client.CoreV1Api(api).create_namespaced_pod(DEMO, {
                "metadata": {"name": "after-the-cut"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
        seen = wait_until(lambda: any(e.get("pod") == f"{DEMO}/after-the-cut" for e in recorder.recording()["timeline"]), 30)
    finally:
        recorder.stop()
        with new_api_client(kube.admin) as api:
            client.CoreV1Api(api).delete_namespaced_pod("after-the-cut", DEMO, grace_period_seconds=0)
            client.CoreV1Api(api).delete_namespaced_config_map("after-the-cut", DEMO)
    assert seen is not None, "the pod watch did not resume after the outage"
    measures = measure(recorder.recording())
    assert 3 <= measures["api_down_seconds"] <= 6 + 8
    assert measures["pods_lost"] == 0
    assert measures["impact"] == "core"


# ---- the control and the probe in a real `chaos run` -------------------------------------------


def experiment(tmp_path: Path, kubeconfig: Path, method: list, fail_on_error: bool = True) -> Path:
    document = {
        "title": "a pod deleted while the impact is recorded",
        "description": "impact_within with max_pods_lost 0 must deviate the run",
        "configuration": {"kubeconfig_path": str(kubeconfig), "workload_namespace": DEMO},
        "controls": [{"name": "impact", "provider": {
            "type": "python", "module": "chaosali.impact.controls",
            "arguments": {"settle_seconds": 2, "fail_on_error": fail_on_error}}}],
        "steady-state-hypothesis": {"title": "nothing lost", "probes": [
            {"type": "probe", "name": "no-pod-lost", "tolerance": {"type": "jsonpath", "path": "$.within", "expect": True},
             "provider": {"type": "python", "module": "chaosali.impact.probes", "func": "impact_within",
                          "arguments": {"max_pods_lost": 0}}}]},
        "method": method,
    }
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(document))
    return path


def run_chaos(tmp_path: Path, path: Path) -> dict:
    import subprocess

    journal = tmp_path / "journal.json"
    done = subprocess.run(["chaos", "run", "--journal-path", str(journal), str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert journal.exists(), done.stdout + done.stderr
    return json.loads(journal.read_text()) | {"log": done.stdout + done.stderr}


def test_impact_within_deviates_a_run_that_lost_a_pod_and_the_journal_keeps_the_recording(kube, tmp_path) -> None:
    assert wait_until(lambda: web_available(kube), 60)
    method = [
        {"type": "action", "name": "delete-a-web-pod", "provider": {
            "type": "python", "module": "chaosali.cluster.actions", "func": "delete",
            "arguments": {"kind": "Pod", "namespace": DEMO, "label_selector": "app=web", "wait": True}}},
        {"type": "action", "name": "let-it-be-replaced", "provider": {
            "type": "process", "path": "sleep", "arguments": "5"}},
    ]
    journal = run_chaos(tmp_path, experiment(tmp_path, kube.admin_kubeconfig, method))
    assert journal["deviated"] is True, journal["log"][-3000:]
    after = journal["steady_states"]["after"]["probes"][0]["output"]
    assert after["within"] is False and after["pods_lost"] == 2
    impact = impact_of(journal)
    assert impact["measures"]["pods_lost"] == 2
    assert impact["recording"]["scope"]["namespaces"] == [DEMO]
    assert wait_until(lambda: web_available(kube), 60)


def test_a_recorder_whose_api_is_unreachable_stops_the_run_or_says_the_recording_is_missing(kube, tmp_path) -> None:
    unreachable = yaml.safe_load(Path(kube.admin_kubeconfig).read_text())
    for cluster in unreachable["clusters"]:
        cluster["cluster"]["server"] = "https://127.0.0.1:9"  # loopback, nothing listens
    kubeconfig = tmp_path / "unreachable.yaml"
    kubeconfig.write_text(yaml.safe_dump(unreachable))
    method = [{"type": "action", "name": "wait", "provider": {"type": "process", "path": "true"}}]

    journal = run_chaos(tmp_path, experiment(tmp_path, kubeconfig, method))
    assert journal["status"] == "interrupted"
    assert ("impact control: cannot start the impact recording: the Kubernetes API at https://127.0.0.1:9 "
            "did not answer (connection refused)") in journal["log"]

    journal = run_chaos(tmp_path, experiment(tmp_path, kubeconfig, method, fail_on_error=False))
    assert journal["status"] != "interrupted"
    assert "could not start" in impact_of(journal)["missing"]


def test_a_pod_its_replicaset_deleted_is_a_scale_down_even_when_the_event_comes_after_the_deletion() -> None:
    from chaosali.impact.recorder import SCALE_DOWN

    recorder = Recorder(lambda: None, Scope((DEMO,)))
    pod = {"metadata": {"namespace": DEMO, "name": "web-1", "labels": {"kube-monkey/enabled": "enabled"},
                        "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d4", "controller": True}]},
           "spec": {"nodeName": "worker1"}, "status": {"phase": "Running"}}
    recorder._pod("LISTED", pod)
    pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    recorder._pod("MODIFIED", pod)
    deleted = [e for e in recorder.recording()["timeline"] if e["what"] == "deleted"]
    assert [e["reason"] for e in deleted] == ["kube-monkey"]  # a guess from its labels, until...
    recorder._event("ADDED", {"involvedObject": {"kind": "ReplicaSet", "namespace": DEMO, "name": "web-5d4"},
                              "reason": "SuccessfulDelete", "message": "Deleted pod: web-1"})
    deleted = [e for e in recorder.recording()["timeline"] if e["what"] == "deleted"]
    assert [e["reason"] for e in deleted] == [SCALE_DOWN]  # ...the ReplicaSet controller says why


def test_an_outage_not_seen_back_lasts_until_the_recording_s_end_not_until_now() -> None:
    """measure is pure: the same recording gives the same measures whenever it is read."""
    recording = {"started_at": "2026-01-01T10:00:00+00:00", "seconds": 30.0, "timeline": [],
                 "api_outages": [{"from": 20.0, "to": None}]}
    assert measure(recording)["api_down_seconds"] == 10.0


class _Recorded:
    """A recorder's recording as it stands (the lab tests run the real one)."""

    def recording(self) -> dict:
        return {**RECORDING, "timeline": list(RECORDING["timeline"])}


def _fault(kind: str, started: str, heals_by: str | None = None) -> ledger.Fault:
    with ledger.injecting(kind, ["host1"]) as record:
        record.started, record.heals_by = started, heals_by
    return record


def test_the_recording_carries_the_run_s_fault_ends_on_its_clock_and_recovery_counts_from_the_last() -> None:
    cut = _fault("cut_network", "2026-01-01T00:00:05+00:00", heals_by="2026-01-01T00:00:20+00:00")
    restart = _fault("restart kubelet", "2026-01-01T00:00:30+00:00")
    ledger.closed(restart.id, "2026-01-01T00:00:30+00:00")
    try:
        recording, measures = controls.recorded(_Recorded())
        assert recording["fault_ends"] == {cut.id: 20.0, restart.id: 30.0}
        assert controls.fault_end(recording) == 30.0 and measures == measure(recording, 30.0)
        _fault("cut_network", "2026-01-01T00:01:00+00:00", heals_by="2026-01-01T00:01:30+00:00")  # after the recording's end
        assert controls.fault_end(controls.recorded(_Recorded())[0]) is None
    finally:
        memory.forget()


def test_a_drain_s_end_is_its_last_eviction_and_a_fault_with_no_end_leaves_recovery_unplaced() -> None:
    drain = _fault("drain", "2026-01-01T00:00:05+00:00")
    try:
        assert controls.fault_end(controls.recorded(_Recorded())[0]) is None  # cordoned, evicting: no end yet
        ledger.ended(drain.id, "2026-01-01T00:00:12+00:00")
        recording, measures = controls.recorded(_Recorded())
        assert recording["fault_ends"] == {drain.id: 12.0} and measures == measure(recording, 12.0)
        ledger.closed(drain.id, "2026-01-01T00:00:40+00:00")  # the uncordon later: the end stays the eviction's
        assert controls.recorded(_Recorded())[0]["fault_ends"] == {drain.id: 12.0}
    finally:
        memory.forget()


def test_a_container_the_kubelet_reports_ended_and_its_successor_started_are_in_the_timeline() -> None:
    """What a real node's kubelet reports of its containers (a reboot, a kill): the end with its reason
    and exit code, then another container running for the same pod."""
    recorder = Recorder(lambda: None, Scope((DEMO,)))

    def reported(container_id: str, state: dict) -> dict:
        return {"metadata": {"namespace": DEMO, "name": "web-1"}, "spec": {"nodeName": "worker1"},
                "status": {"phase": "Running", "containerStatuses": [
                    {"name": "web", "containerID": container_id, "restartCount": 0, "state": state}]}}

    recorder._pod("LISTED", reported("containerd://a", {"running": {"startedAt": "2026-01-01T00:00:00Z"}}))
    ended = {"terminated": {"reason": "Error", "exitCode": 137, "finishedAt": "2026-01-01T00:01:00Z"}}
    recorder._pod("MODIFIED", reported("containerd://a", ended))
    recorder._pod("MODIFIED", reported("", {"waiting": {"reason": "ContainerCreating"}}))  # no ID while created
    recorder._pod("MODIFIED", reported("containerd://b", {"running": {"startedAt": "2026-01-01T00:01:05Z"}}))
    timeline = [{k: v for k, v in e.items() if k not in ("at", "t")} for e in recorder.recording()["timeline"]]
    about = {"kind": "pod", "pod": f"{DEMO}/web-1", "workload": None, "node": "worker1", "container": "web"}
    assert timeline == [
        {**about, "what": "container-ended", "reason": "Error", "exit_code": 137, "finished_at": "2026-01-01T00:01:00Z"},
        {**about, "what": "container-started", "started_at": "2026-01-01T00:01:05Z"},
    ]


def test_http_targets_may_be_plain_urls() -> None:
    [target] = _http_targets(["http://10.0.0.5:30080/"])
    assert target.name == "http://10.0.0.5:30080/" and target.rate == 5
    assert _http_targets([]) == ()
    with pytest.raises(InvalidArgument, match="a list of URLs or of objects"):
        _http_targets([5])
