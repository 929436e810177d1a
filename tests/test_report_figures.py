"""The figures of a journal: fault windows, recovery measured against the FMEA, the impact recording,
the two judgements (fault proven, impact within the FMEA), the score."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import xml.etree.ElementTree as ET

import pytest
import xmlschema

from chaosali.core.errors import InvalidArgument
from chaosali.impact import controls
from chaosali.impact.measures import RECORDING_EVIDENCE, judge, measure
from chaosali.impact.recorder import Recorder, Scope
from chaosali.report.figures import campaign_score, read_run
from chaosali.report.recovery import NO_OUTAGE, NOT_MEASURED, NOT_RECOVERED, RECOVERED
from chaosali.report.fmea import validate_fmea
from chaosali.report.render import FORMATS, render
from chaosali.report.words import expectations, run_verdict
from reports import (
    DATA, DOM, JUNIT_JOURNALS, check_page, experiment_with, impact_measures, load, md_cells, outcome,
)


# -- figures ---------------------------------------------------------------------------------------------


def test_slow_recovery_is_measured_from_the_fault_end_and_flagged():
    run = read_run(load("secret-failure.json"), "secret-failure.json")
    [fault] = run.faults
    assert (fault.kind, fault.fault_id, fault.ended_by) == ("network-cut", "chaosali-0badf00d", "healed by its timer")
    assert fault.end == fault.heals_at  # the rollback restored nothing: the timer had healed it
    recovery = run.recovery
    assert recovery.state == RECOVERED
    # the API came back at +65.0 s; the cut healed at +20.05 s
    assert recovery.measured == 44.95 and recovery.expected == 30 and recovery.exceeded is True
    assert recovery.healthy_by == "watch-api-through-the-cut: up"
    assert run.impact_seen == "the API down 64 s"
    # the API down is a core impact, worse than the partial one the FMEA expects
    assert run.impact_level == "core" and run.impact_exceeded is True
    assert "45.0 s measured" in render([run], "text") and "EXCEEDED" in render([run], "text")


def test_faults_of_a_random_combination_are_each_a_window():
    journal = load("secret-failure.json")
    cut = journal["run"][0]["output"]
    second = {**cut, "fault_id": "chaosali-5ec0d000", "kind": "stress-cpu", "heals_at": "2026-01-10T10:00:30+00:00"}
    journal["run"][0]["output"] = {"seed": 7, "why": "2 of 5 pool entries drawn with seed 7", "faults": [
        {"entry": 0, "action": "cut_network", **cut}, {"entry": 3, "action": "stress_cpu", **second}]}
    run = read_run(journal)
    assert [(f.kind, f.fault_id) for f in run.faults] == [("network-cut", "chaosali-0badf00d"),
                                                          ("stress-cpu", "chaosali-5ec0d000")]
    # the clock starts when the last of them is gone
    assert run.recovery.started_by == "stress-cpu chaosali-5ec0d000 healed by its timer"
    assert run.recovery.measured == 35.0


def test_deviated_run_that_never_recovers():
    run = read_run(load("deviated.json"))
    assert run.deviated and [c.met for c in run.steady] == [True, False]
    [fault] = run.faults
    assert fault.ended_by == "restored by restore-kubelet-configuration"
    assert run.recovery.state == NOT_RECOVERED and run.recovery.measured is None
    assert run.recovery.exceeded is True
    nodes, steady = run.outages
    assert nodes.label == "nodes NotReady" and nodes.end is None and nodes.seconds == pytest.approx(90.26)
    assert steady.label == "steady state not met after"
    assert run.impact_level == "partial" and run.impact_exceeded is False  # as the FMEA expects
    text = render([run], "text")
    assert "deviated: True" in text and "not recovered" in text and "EXCEEDED" in text


def test_interrupted_run_without_method():
    journal = load("interrupted.json")
    run = read_run(journal)
    assert run.status == "interrupted" and run.faults == [] and run.outages == []
    assert run.recovery.state == NOT_MEASURED and run.recovery.exceeded is None
    assert run.impact_seen == "none" and run.impact_level is None and run.impact_exceeded is None
    for fmt in FORMATS:
        assert render([run], fmt)
    check_page(render([run], "html"), [journal])


def test_no_outage_seen_is_a_zero_recovery():
    journal = load("secret-failure.json")
    watch = journal["run"][1]["output"]
    watch["changes"] = watch["changes"][:1]
    watch.update(down_at=None, back_at=None, down_seconds=0.0)
    journal["run"][2:4] = []  # no failed login, no config read
    run = read_run(journal)
    assert run.recovery.state == NO_OUTAGE and run.recovery.measured == 0 and run.recovery.exceeded is False


# -- the impact recording (issue 10) --------------------------------------------------------------------



def test_fmea_limits_are_impact_withins_and_validated():
    fmea = validate_fmea(experiment_with(max_pods_lost=0, max_unavailable_seconds=30.5, max_recovery_seconds=60,
                                         min_availability=99.5, max_api_down_seconds=0))
    assert fmea["min_availability"] == 99.5
    for name, wrong in [("max_pods_lost", 1.5), ("max_pods_lost", -1), ("max_pods_lost", True),
                        ("min_availability", 101), ("min_availability", "99"), ("max_unavailable_seconds", float("nan")),
                        ("max_recovery_seconds", float("inf")), ("max_api_down_seconds", -0.1),
                        ("max_api_down_seconds", None)]:
        with pytest.raises(InvalidArgument, match=name):
            validate_fmea(experiment_with(**{name: wrong}) if wrong is not None else
                          {"title": "t", "extensions": [{"name": "chaosali", "fmea": {
                              **experiment_with()["extensions"][1]["fmea"], name: None}}]})


@pytest.mark.parametrize("limit, bound", [("max_pods_lost", 1.5), ("max_api_down_seconds", 1e9),
                                          ("min_availability", 101)])
def test_impact_within_refuses_the_limits_the_fmea_refuses(limit, bound):
    """One reader per limit: judge took 1.5 pods and 1e9 s, which the FMEA check refused."""
    measures = measure({"seconds": 10, "timeline": []})
    with pytest.raises(InvalidArgument, match=limit):
        judge(measures, {limit: bound})
    with pytest.raises(InvalidArgument, match=limit):
        validate_fmea(experiment_with(**{limit: bound}))


def test_a_real_impact_recording_is_shown_in_every_format():
    journal = load("impact.json")
    run = read_run(journal, "impact.json")
    measures = impact_measures(journal)
    # the measured impact wins over the journal's probes: the recorder saw the API down, so core
    assert run.measures == measures and run.impact_level == measures["impact"] == "core"
    assert run.impact_exceeded is True and run.fault_proven is True
    lost = measures["workloads"]["Deployment demo/web"]["lost"]
    assert [pod["reason"] for pod in lost] == ["deleted by mistake"] * 2
    checks = {c.name: c.met for c in run.checks() if c.kind == "limit"}
    assert checks == {"pods lost at most 1": False, "each workload below desired at most 30 s": True,
                      "workloads and nodes recovered within 30 s": True, "API down at most 10 s": True}
    # probes 4 x 3 met, impact 3 missed, observed 3 met, recovery 1 met, limits 3 of 4: 19 of 23
    assert run.score == round(100 * 19 / 23, 1)

    text = render([run], "text")
    for needle in ["Workloads:", "2/2 at +0.06 s, 1/2 at +0.33 s, 0/2 at +0.33 s", "+22.32 s to +35.80 s",
                   "Pods lost:", lost[0]["pod"], "deleted by mistake", lost[0]["replacement"], "worker1",
                   "Nodes:", "unreachable", "API outages:", "+37.76 s  +40.79 s  3.03 s",
                   "MISSED pods lost at most 1: max_pods_lost 1: measured 2 lost: EXCEEDED",
                   "met    API down at most 10 s", f"resilience score: {run.score:g} / 100 (19 of 23"]:
        assert needle in text, needle
    markdown = render([run], "markdown")
    assert "## Impact recorded" in markdown and "**Pods lost**" in markdown
    [row] = [md_cells(line) for line in markdown.splitlines() if line.startswith(f"| {lost[0]['pod']}")]
    assert row == [lost[0]["pod"], "Deployment demo/web", "worker1", "deleted by mistake", "+0.28 s",
                   lost[0]["replacement"], "0.06 s"]
    assert "| pods lost at most 1 | MISSED |" in markdown
    figures = json.loads(render([run], "json"))["runs"][0]
    assert figures["recording"]["measures"]["pods_lost"] == 2 and figures["score"] == run.score
    assert {(c["limit"], c["met"]) for c in figures["limits"]} >= {("max_pods_lost", False)}
    dom = check_page(render([run], "html"), [journal])
    svg = dom.find("svg", id="timeline-1")
    # one bar per window the measures count (1/2 then 0/2 ready is one window below desired)
    assert len(svg.find_all("rect", cls="below")) == 2 and len(svg.find_all("rect", cls="notready")) == 1
    assert dom.find(id="score-1").find(cls="value").text() == f"{run.score:g}"
    assert [h.text() for h in dom.find("section", cls="recorded").find_all("h4")] == [
        "Workloads", "Pods lost", "Nodes", "API outages"]
    junit = ET.fromstring(render([run], "junit"))
    xmlschema.XMLSchema(str(DATA / "junit-10.xsd")).validate(render([run], "junit"))
    assert junit.find("testsuite/properties/property[@name='resilience_score']").get("value") == f"{run.score:g}"
    cases = {c.get("name"): outcome(c) for c in junit.iter("testcase") if c.get("classname") == "impact.fmea"}
    assert cases == {"impact at most partial": "failure", "fault proven": "passed",
                     "recovery within 30 s": "passed", **{n: "passed" if met else "failure" for n, met in checks.items()}}


def test_http_targets_are_shown_with_availability_and_latency():
    journal = load("impact.json")
    recording = next(e for e in journal["extensions"] if e["name"] == "chaosali-impact")
    started = dt.datetime.fromisoformat(recording["recording"]["started_at"])
    window = {"from": (started + dt.timedelta(seconds=38)).isoformat(),
              "to": (started + dt.timedelta(seconds=41)).isoformat(), "reason": "connection refused"}
    recording["measures"]["http"] = {"web": {"samples": 200, "availability": 92.5, "p50": 0.004, "p95": 0.02,
                                             "p99": 0.25, "longest_failure_streak": 15, "error_windows": [window]}}
    journal["experiment"]["extensions"][0]["fmea"]["min_availability"] = 99
    run = read_run(journal, "impact.json")
    assert "web available 92.5 %" in run.impact_seen
    text = render([run], "text")
    assert "HTTP targets:" in text and "92.5 %" in text and "4 ms" in text and "250 ms" in text
    assert "+38.03 s to +41.03 s (connection refused)" in text
    assert "MISSED HTTP availability at least 99 %: min_availability 99: measured web 92.5 %" in text
    dom = check_page(render([run], "html"), [journal])
    assert len(dom.find("svg", id="timeline-1").find_all("rect", cls="http-error")) == 1


def test_limits_without_a_recording_cannot_be_judged():
    journal = load("deviated.json")
    journal["experiment"]["extensions"][0]["fmea"]["max_pods_lost"] = 0
    run = read_run(journal)
    [limit] = run.limits
    assert limit.met is None and "no impact recording" in limit.why
    [case] = [c for c in ET.fromstring(render([run], "junit")).iter("testcase") if c.get("name") == "pods lost at most 0"]
    assert outcome(case) == "skipped"
    journal["extensions"] = [{"name": "chaosali-impact", "missing": "the impact recording could not start: refused"}]
    run = read_run(journal)
    assert run.limits[0].why == "the impact recording could not start: refused"
    assert "impact recording missing: the impact recording could not start" in render([run], "text")


def test_score_weighs_critical_checks_three_and_the_others_one():
    runs = [read_run(load(name)) for name in JUNIT_JOURNALS]
    for run in runs:
        judged = [c for c in run.checks() if c.met is not None]
        assert {c.weight for c in judged if c.kind in ("probe", "impact", "observed")} <= {3}
        assert {c.weight for c in judged if c.kind in ("recovery", "limit")} <= {1}
    secret, deviated, interrupted, process = runs
    # 2 probes met (6), impact missed (3), observed (3), recovery missed (1): 9 of 13
    assert secret.score == round(100 * 9 / 13, 1)
    # interrupted: 2 probes met before, the 2 never checked after count as missed, nothing else judged
    assert interrupted.score == 50.0
    assert campaign_score(runs) == round(sum(r.score for r in runs) / 4, 1)
    text = render(runs, "text")
    assert f"resilience score {campaign_score(runs):g} / 100" in text
    for fmt in ("markdown", "html"):
        assert f"{campaign_score(runs):g} / 100" in render(runs, fmt)


# -- a fault not observed (issue 15) ----------------------------------------------------------------------


def test_a_fault_not_observed_is_flagged_in_every_format_and_fails_in_junit():
    journal = load("impact.json")
    measures = impact_measures(journal)
    measures.update(impact="none", pods_lost=0, api_down_seconds=0, workloads={}, nodes={})
    run = read_run(journal, "quiet.json")
    assert run.impact_level == "none" and run.fault_proven is False and run.impact_exceeded is False
    for fmt in ("text", "markdown", "html"):
        out = render([run], fmt)
        assert "FAULT NOT OBSERVED" in out, fmt
        assert "expected at most partial: ok" not in out, fmt
    assert json.loads(render([run], "json"))["runs"][0]["fault"]["proven"] is False
    dom = DOM(render([run], "html")).root
    assert "bad" in dom.find("div", cls="impact").classes()
    [case] = [c for c in ET.fromstring(render([run], "junit")).iter("testcase")
              if c.get("name") == "fault proven"]
    assert outcome(case) == "failure" and case.find("failure").get("message").startswith("FAULT NOT OBSERVED")
    # without the recorder, the journal's own sightings decide: nothing seen down is no impact either
    plain = load("secret-failure.json")
    plain["run"][1]["output"]["changes"] = plain["run"][1]["output"]["changes"][:1]
    plain["run"][2:4] = []
    assert read_run(plain).fault_proven is False
    # an FMEA that expects no impact has nothing to observe
    assert read_run(load("process-failure.json")).fault_proven is None


# -- two judgements: fault proven, impact against the FMEA (issue 19) ------------------------------------


def with_proof(journal: dict, proven: bool, evidence: list[dict], why: str | None = None) -> dict:
    """The journal as if its steady state's last check ran faults_observed and judged the faults so."""
    after = journal["steady_states"]["after"]
    at = after["probes"][-1]["end"]
    after["probes"].append({
        "activity": {"type": "probe", "name": "faults-proven",
                     "provider": {"type": "python", "module": "chaosali.impact.probes", "func": "faults_observed"},
                     "tolerance": {"type": "jsonpath", "path": "$.all_seen", "expect": True}},
        "output": {"all_seen": proven, "proven": proven, "faults": [{"kind": "reboot", "detail": "worker1"}],
                   "evidence": evidence, **({"why": why} if why else {})},
        "start": at, "end": at, "duration": 0.0, "status": "succeeded", "tolerance_met": proven})
    if not proven:
        after["steady_state_met"], journal["deviated"] = False, True
    return journal


def quiet_recording(journal: dict) -> dict:
    impact_measures(journal).update(impact="none", pods_lost=0, api_down_seconds=0, workloads={}, nodes={})
    return journal


REBOOTED = {"what": "reboot of worker1 (10.217.0.12)", "seen": True, "expected": True,
            "detail": "worker1: new boot identity, SSH down 1.1 s"}


def test_a_proven_fault_with_less_impact_than_expected_is_a_finding_not_a_failure():
    run = read_run(with_proof(quiet_recording(load("impact.json")), True, [REBOOTED]), "reboot.json")
    assert run.fault_proven is True and run.impact_level == "none" and run.impact_lower is True
    assert run_verdict(run) == "ok, impact lower than expected" and run.deviated is False
    proven = next(e for e in expectations(run) if e.name == "fault proven")
    assert proven.met is True and "reboot of worker1 (10.217.0.12): worker1: new boot identity" in proven.sentence
    for fmt in ("text", "markdown", "html", "junit"):
        out = render([run], fmt)
        assert "FAULT NOT OBSERVED" not in out and "proved nothing" not in out, fmt
        assert "lower than expected" in out, fmt
    figures = json.loads(render([run], "json"))["runs"][0]
    assert figures["fault"]["proven"] is True and figures["fault"]["judged_by"] == "faults_observed"
    assert figures["impact"]["lower"] is True and figures["impact"]["exceeded"] is False


def test_evidence_probes_prove_a_fault_that_no_watch_saw():
    # host-netcut: no recording, no watch; network_effect saw every connection lost
    cut = {"what": "network effect on host1 (tcp port 22 from controller)", "seen": True, "expected": True,
           "detail": "at least 100 % lost"}
    plain = load("secret-failure.json")
    plain["run"][1]["output"]["changes"] = plain["run"][1]["output"]["changes"][:1]
    plain["run"][2:4] = []
    assert read_run(plain).fault_proven is False  # judged by the impact seen alone: nothing
    run = read_run(with_proof(plain, True, [cut]))
    assert run.fault_proven is True and run_verdict(run) != "FAULT NOT OBSERVED"


def test_a_fault_the_run_could_not_prove_is_not_observed_whatever_the_impact():
    drain = {"what": "drain of worker1", "seen": False, "expected": True,
             "detail": "0 pods evicted, 0 blocked by a budget, 1 skipped"}
    run = read_run(with_proof(load("impact.json"), False, [drain], why=f"{drain['what']}: {drain['detail']}"))
    assert run.fault_proven is False and run_verdict(run) == "FAULT NOT OBSERVED" and run.deviated is True
    assert "FAULT NOT OBSERVED: drain of worker1: 0 pods evicted" in render([run], "text")
    [case] = [c for c in ET.fromstring(render([run], "junit")).iter("testcase") if c.get("name") == "fault proven"]
    assert outcome(case) == "failure"


def test_a_steady_state_probe_not_met_is_never_ok():
    journal = with_proof(quiet_recording(load("impact.json")), True, [REBOOTED])
    journal["steady_states"]["after"]["probes"][0]["tolerance_met"] = False
    assert run_verdict(read_run(journal)) == "DEVIATED"  # the probe alone
    journal["steady_states"]["after"]["steady_state_met"], journal["deviated"] = False, True
    assert run_verdict(read_run(journal)) == "EXCEEDED"  # and so not recovered at the last sighting


def test_a_watch_that_ended_down_says_what_it_saw():
    journal = load("secret-failure.json")
    watch = journal["run"][1]["output"]
    watch.update(changes=watch["changes"][:2], last=False, back_at=None)
    text = render([read_run(journal)], "text")
    assert f"first down at {watch['down_at']}, still down when the watch ended after" in text
    assert "not back when the watch ended" not in text


def test_recovery_counts_from_the_fault_ends_the_run_recorded():
    """The run records its faults' ends once (the impact recording's fault_ends); the report reads
    them rather than working them out again from the activities."""
    journal = load("impact.json")
    worked_out = read_run(journal).recovery
    impact = next(e for e in journal["extensions"] if e["name"] == "chaosali-impact")
    started = dt.datetime.fromisoformat(impact["recording"]["started_at"])
    end = round((worked_out.started - started).total_seconds() + 0.5, 3)  # on the recording's clock
    impact["recording"]["fault_ends"] = {"chaosali-0123abcd": end, "chaosali-4567cdef": "not a time"}
    recovery = read_run(journal).recovery
    assert recovery.started == started + dt.timedelta(seconds=end)
    assert recovery.started_by == "chaosali-0123abcd ended (as the run recorded it)"
    assert recovery.measured == round(worked_out.measured - 0.5, 2)


def test_the_page_draws_the_measures_a_workload_short_before_the_drill_draws_no_bar():
    """The tables said 0 s below desired while the page drew a bar from the raw readiness."""
    journal = load("impact.json")
    impact = next(e for e in journal["extensions"] if e["name"] == "chaosali-impact")
    recording = impact["recording"]
    recording["api_outages"] = []
    recording["timeline"] = [
        {"t": 0.0, "kind": "workload", "what": "initial", "workload": "Deployment demo/slow", "desired": 2, "ready": 1},
        {"t": 5.0, "kind": "workload", "what": "changed", "workload": "Deployment demo/slow", "desired": 2, "ready": 2},
        {"t": 8.0, "kind": "workload", "what": "changed", "workload": "Deployment demo/cut", "desired": 2, "ready": 0},
        {"t": 9.0, "kind": "workload", "what": "changed", "workload": "Deployment demo/cut", "desired": 2, "ready": 2},
    ]
    impact["measures"] = measure(recording)
    assert impact["measures"]["workloads"]["Deployment demo/slow"]["seconds_below_desired"] == 0
    page = render([read_run(journal)], "html")
    assert "Deployment demo/slow: below desired" not in page
    assert "Deployment demo/cut: below desired, lowest 0/2" in page


def test_one_time_base_a_recording_on_its_own_clock_reads_as_an_older_one_in_iso_times():
    """Windows are seconds of the recording's clock now; an older journal's ISO windows are read
    onto that clock, so both tell the same story."""
    older = load("impact.json")
    newer = load("impact.json")
    impact = next(e for e in newer["extensions"] if e["name"] == "chaosali-impact")
    started = dt.datetime.fromisoformat(impact["recording"]["started_at"])

    def on_clock(stamp):
        return None if stamp is None else round((dt.datetime.fromisoformat(stamp) - started).total_seconds(), 3)

    for window in [*impact["recording"]["api_outages"],
                   *(w for t in impact["measures"]["http"].values() for w in t["error_windows"])]:
        window["from"], window["to"] = on_clock(window["from"]), on_clock(window["to"])
    assert isinstance(impact["recording"]["api_outages"][0]["from"], float)
    for fmt in ("text", "markdown"):
        assert render([read_run(newer)], fmt) == render([read_run(older)], fmt)


def test_an_outage_the_recording_measured_is_one_figure_with_its_source_and_resolution():
    """It read as two numbers: "the API down 3.03 s (recorded)" and, from the watch, "the API down 5.02 s"."""
    seen = read_run(load("impact.json")).impact_seen
    assert seen.count("the API down") == 1 and "the API down 3.03 s (recorded, /readyz each second)" in seen
    assert "nodes NotReady" not in seen and "worker1 NotReady 13.5 s" in seen  # the recorded node, not the watch
    plain = read_run(load("deviated.json")).impact_seen  # without a recording, the watches tell it
    assert "NotReady" in plain and "(recorded" not in plain


# -- recovery judged from what recovered (issue 31) -------------------------------------------------------


def fmea_impact_missed(journal: dict) -> dict:
    """The journal as if its steady state's last check had met every probe but impact_within."""
    after = journal["steady_states"]["after"]
    [judge] = [p for p in after["probes"] if p["activity"]["provider"]["func"] == "impact_within"]
    judge["tolerance_met"], after["steady_state_met"], journal["deviated"] = False, False, True
    return journal


def test_a_drill_whose_only_unmet_check_is_its_fmea_impact_recovered():
    """node-drain, node-reboot and zone-outage exceeded their FMEA and were also "not recovered:
    still down at the last sighting (steady state after not met)", though every other probe was met
    and the workload was back: the impact check failing is not the system being down."""
    journal = fmea_impact_missed(load("impact.json"))
    run = read_run(journal)
    assert run.impact_exceeded is True and run_verdict(run) == "EXCEEDED"
    assert run.recovery.state == RECOVERED and run.recovery.measured == 1.16 and run.recovery.exceeded is False
    assert [o.label for o in run.outages] == ["nodes NotReady", "the API down"]  # no "steady state not met after"
    met = {e.name: e.met for e in expectations(run)}
    assert met["impact at most partial"] is False and met["recovery within 30 s"] is True
    text = render([run], "text")
    assert "recovery: 1.16 s measured" in text and "not recovered" not in text
    [case] = [c for c in ET.fromstring(render([run], "junit")).iter("testcase") if c.get("name") == "recovery within 30 s"]
    assert outcome(case) == "passed"
    # a hypothesis of nothing but the run's judges says nothing about the system
    alone = fmea_impact_missed(load("impact.json"))
    alone["steady_states"]["after"]["probes"] = alone["steady_states"]["after"]["probes"][1:]
    assert read_run(alone).recovery.state == RECOVERED


def test_recovery_is_judged_from_the_recorded_workloads_nodes_api_and_http_targets():
    """The recording watched the workload all along: it is back when its ready replicas are, not
    when a steady state was met (zone-outage's web was 2/2 again at +35.0 s, after its last check)."""
    journal = fmea_impact_missed(load("impact.json"))
    impact = next(e for e in journal["extensions"] if e["name"] == "chaosali-impact")
    web = impact["measures"]["workloads"]["Deployment demo/web"]
    web["below_desired"][-1]["to"] = 50.0  # after the steady state's last check (+41.19 s on its clock)
    recovery = read_run(journal).recovery
    started = dt.datetime.fromisoformat(impact["recording"]["started_at"])
    assert recovery.state == RECOVERED and recovery.healthy == started + dt.timedelta(seconds=50)
    assert recovery.healthy_by == "Deployment demo/web back (recorded)"
    assert recovery.measured == round((recovery.healthy - recovery.started).total_seconds(), 2) > 1.16
    # still below desired when the recording ended: not recovered, and it says what
    web["below_desired"][-1]["to"] = None
    recovery = read_run(journal).recovery
    assert recovery.state == NOT_RECOVERED
    assert recovery.healthy_by == "still down at the last sighting (Deployment demo/web below desired (recorded))"
    # an HTTP target failing at the end is the system down too
    web["below_desired"][-1]["to"] = 35.769
    impact["measures"]["http"] = {"web": {"samples": 100, "availability": 90.0, "longest_failure_streak": 10,
                                          "error_windows": [{"from": 45.0, "to": None}]}}
    assert read_run(journal).recovery.healthy_by == "still down at the last sighting (HTTP web failing (recorded))"


# -- one figure per measure (issue 31) -------------------------------------------------------------------


def shown(fmt: str, out: str) -> str:
    """What a report tells in its own words: the HTML's raw outputs (<details>) and JUnit's
    system-out (each activity's output, as the journal holds it) left out."""
    if fmt == "html":
        return re.sub(r"<details>.*?</details>", "", out, flags=re.S)
    if fmt == "junit":
        return " ".join(e.get("message", "") for e in ET.fromstring(out).iter() if e.tag in ("failure", "error", "skipped"))
    return out


def test_one_outage_has_one_figure_in_every_format():
    """The demo's report gave one API outage as the watch's figure, the recording's, and the
    recording's summary at the moment the run was judged. The recording's is the one figure; the
    watch's, where its activity is told, says it is the watch's."""
    journal = load("alerts.json")  # master-netcut: the watch saw the API down 10.06 s, the recording 9.02 s
    evidence = journal["steady_states"]["after"]["probes"][3]["output"]["evidence"]
    assert "the API down 8.43 s" in evidence[1]["detail"]  # the recording's summary when the run was judged
    evidence[0]["detail"] += ", as this watch saw it (a check every 0.5 s)"  # as the watch now says it
    run = read_run(journal)
    assert run.impact_seen == "the API down 9.02 s (recorded, /readyz each second)"
    for fmt in FORMATS:
        out = shown(fmt, render([run], fmt))
        assert "8.43" not in out, fmt
        assert all(out[m.end():].startswith(" s in all, as this watch saw it")
                   for m in re.finditer(r"10\.06\b", out)), fmt
    figures = json.loads(render([run], "json"))["runs"][0]
    assert figures["outages"] == []  # the watch's outage of the API: the recording measured it
    assert figures["fault"]["evidence"][1]["detail"] == "core impact recorded (its figures: impact seen)"
    timeline = DOM(render([run], "html")).root.find("svg", id="timeline-1")
    assert [r.find("text").text() for r in timeline.find_all("g", cls="row") if r.find_all("rect", cls="outage")] == [
        "the API down (recorded)"]


def test_the_recording_s_evidence_names_what_it_hit_not_for_how_long():
    """Its figures at the moment the run was judged were a third figure beside the watch's and the
    recording's final one."""
    recorder = Recorder(lambda: None, Scope(("demo",)))
    recorder._started, recorder._started_at = time.monotonic() - 12, dt.datetime.now(dt.timezone.utc).isoformat()
    recorder._outages.sample(False, 2.0)
    recorder._timeline += [
        {"t": 0.1, "kind": "node", "node": "worker1", "what": "initial", "ready": True, "taints": []},
        {"t": 3.0, "kind": "node", "node": "worker1", "what": "not-ready"},
        {"t": 0.1, "kind": "workload", "what": "initial", "workload": "Deployment demo/web", "desired": 2, "ready": 2},
        {"t": 3.5, "kind": "workload", "what": "changed", "workload": "Deployment demo/web", "desired": 2, "ready": 1}]
    [sighting] = controls._sightings(recorder)
    assert sighting["what"] == RECORDING_EVIDENCE
    assert sighting["detail"] == "core impact recorded: the API down, Deployment demo/web below desired, worker1 NotReady"
