"""The words every report format shares: a recovery, a verdict, an FMEA line, the expectations,
the score, the recorded impact's tables, a campaign row."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Sequence

from chaosali.impact import measures
from chaosali.impact.measures import LIMITS
from chaosali.report.figures import Run, Scored, campaign_score
from chaosali.report.model import Activity, FaultWindow, LimitCheck, seconds_text
from chaosali.report.recovery import NO_OUTAGE, NOT_RECOVERED, RECOVERED, Recovery
from chaosali.report.outputs import output_lines, skew_text, status_words
from chaosali.report.safety import halt_sentence, revert_sentence

__all__ = [
    "Expectation", "RED_VERDICTS", "Table", "activity_details", "story", "campaign_score_text", "detection_sentence", "expectations",
    "expected_text", "alerts_sentence",
    "fmea_sentence", "impact_figure", "impact_flag", "impact_sentence", "impact_tables", "impact_verdict", "offset_text", "output_text",
    "proof_sentence", "recording_sentence", "recovery_seen", "recovery_sentence", "run_verdict", "score_text", "steady_words",
    "summary_rows", "together_text", "verdict",
]

_OUTPUT_MAX = 6000  # characters of an activity's output shown


@dataclass(frozen=True)
class Expectation:
    """One FMEA expectation of a run, judged by ``figures``: met, missed, or None (cannot tell)."""

    name: str  # stable from run to run of one experiment, e.g. "recovery within 30 s"
    met: bool | None
    sentence: str  # what was measured against what, or why it cannot be


@dataclass(frozen=True)
class Table:
    """A table of the recorded impact, as every format shows it."""

    title: str
    header: list[str]
    rows: list[list[str]]

    def __post_init__(self) -> None:
        # cells come from the journal: a null or a number is shown as text
        self.rows[:] = [[str(cell) for cell in row] for row in self.rows]


NOT_OBSERVED = "FAULT NOT OBSERVED"
NOT_DETECTED = measures.NOT_DETECTED  # an expected alert did not fire: the monitoring missed the failure
DEVIATED = "DEVIATED"  # a steady-state probe not met, whatever the FMEA says
RED_VERDICTS = (NOT_OBSERVED, NOT_DETECTED, "EXCEEDED", DEVIATED)  # a failed drill
LOWER = "lower than expected (the fault is proven: a finding about the system, not a failed drill)"


def recovery_seen(recovery: Recovery) -> str:
    if recovery.state == RECOVERED:
        return seconds_text(recovery.measured)
    if recovery.state == NO_OUTAGE:
        return "0 s (no outage seen)"
    return recovery.state


def expected_text(recovery: Recovery) -> str:
    return "-" if recovery.expected is None else f"≤ {seconds_text(recovery.expected)}"


def verdict(recovery: Recovery) -> str:
    return _flag(recovery.exceeded)


def recovery_sentence(recovery: Recovery) -> str:
    """The measured recovery next to the expected one, and between which moments."""
    if recovery.state == RECOVERED:
        measured = f"{seconds_text(recovery.measured)} measured, from {recovery.started_by} to {recovery.healthy_by}"
    elif recovery.state == NO_OUTAGE:
        measured = "0 s: no outage seen"
    elif recovery.state == NOT_RECOVERED:
        measured = f"not recovered: after {recovery.started_by}, {recovery.healthy_by}"
    else:
        measured = f"not measured: {recovery.healthy_by or recovery.started_by}"
    if recovery.expected is None:
        return f"{measured}; no expected recovery (no valid FMEA)"
    return f"{measured}; expected {expected_text(recovery)}: {verdict(recovery)}"


def impact_verdict(run: Run) -> str:
    """The impact level seen next to the FMEA's, e.g. "core, expected at most partial: EXCEEDED"."""
    recovery = run.recovery
    # not measured for the reason the recovery was not: nothing injected, or nothing watching
    level = run.impact_level or f"not measured ({recovery.healthy_by or recovery.started_by})"
    if run.fmea is None:
        return f"{level}, no expected impact (no valid FMEA)"
    flag = (LOWER if run.impact_lower else "- (the fault is not proven)" if run.fault_proven is False
            else _flag(run.impact_exceeded))
    measured = " (recorded)" if run.measures else ""
    return f"{level}{measured}, expected at most {run.fmea['impact']}: {flag}"


def impact_figure(run: Run) -> str:
    """The impact seen in one figure (a card's): the API down where it was, else the first figure,
    and how many more the report gives."""
    figures = run.impact_figures
    if not figures:
        return "no outage seen" if run.impact_level else "not measured"
    first = next((f for f in figures if f.startswith("the API down")), figures[0]).split(" (recorded")[0]
    return first + (f" (+{len(figures) - 1} more)" if len(figures) > 1 else "")


def impact_flag(run: Run) -> str:
    """The impact against the FMEA in a word or two: ok, EXCEEDED, lower than expected, FAULT NOT OBSERVED."""
    if run.fault_proven is False:
        return NOT_OBSERVED
    return "lower than expected" if run.impact_lower else _flag(run.impact_exceeded)


def impact_sentence(run: Run) -> str:
    return f"{run.impact_seen}; {impact_verdict(run)}"


def _flag(exceeded: bool | None) -> str:
    return {True: "EXCEEDED", False: "ok", None: "-"}[exceeded]


def expectations(run: Run) -> list[Expectation]:
    """What the FMEA expects of the run (impact, the fault proven, recovery time, limits), each met
    or missed: the run's checks (``figures``) but its steady-state probes."""
    limits, detected = iter(run.limits), iter(run.detections)
    sentences = {
        "detection": lambda: detection_sentence(next(detected)),
        "impact": lambda: impact_sentence(run),
        "proven": lambda: proof_sentence(run),
        "recovery": lambda: recovery_sentence(run.recovery),
        "limit": lambda: limit_sentence(next(limits)),
        "halt": lambda: halt_sentence(run.journal),
        "revert": lambda: revert_sentence(run.journal),
    }
    return [Expectation(check.name, check.met, sentences[check.kind]()) for check in run.checks()
            if check.kind != "probe"]


def proof_sentence(run: Run) -> str:
    """Whether the faults took effect, and the evidence (or the lack of it)."""
    expected = run.fmea["impact"] if run.fmea else "?"
    if run.not_injected:
        return f"{NOT_OBSERVED}: " + "; ".join(fault.summary() for fault in run.not_injected) + "; the drill proved nothing"
    if run.proof is not None:
        seen = [entry for entry in run.evidence if entry.get("seen")]
        if run.fault_proven:
            return "proven by " + "; ".join(f"{entry.get('what')}: {entry.get('detail')}" for entry in seen)
        return f"{NOT_OBSERVED}: {run.proof.get('why') or 'no evidence'}; the drill proved nothing"
    if run.fault_proven is None:
        return f"cannot tell: no faults_observed in the journal and the impact was not measured; the FMEA expects {expected}"
    source = "the impact recording" if run.measures else "the journal's probes and watches"
    if run.fault_proven:
        return f"{run.impact_level} impact seen by {source} (no faults_observed in the journal)"
    return (f"{NOT_OBSERVED}: {source} shows no impact, the FMEA expects {expected}, and no faults_observed "
            "judged the faults; the drill proved nothing (see the fault's evidence and the observation windows)")


def detection_sentence(detection: dict) -> str:
    """An expected alert: its time to detect and to resolve, or NOT DETECTED, or why it is not judged."""
    if detection["met"] is None:
        return f"not judged: {detection['why']}"
    if detection["firing_at"] is None:
        return detection["why"]
    resolved = ("not resolved by the recording's end" if detection["seconds_to_resolve"] is None
                else f"resolved {seconds_text(detection['seconds_to_resolve'])} after the heal")
    flag = "ok" if detection["met"] else "LATE"
    return f"fired {seconds_text(detection['seconds_to_detect'])} after the fault started; {resolved}: {flag}"


def alerts_sentence(run: Run) -> str:
    """The alerts recorded, sorted by what they are about: those that detected the fault (the
    declared ones with their verdict, then those on a faulted host), those already firing before
    the fault, and the unexpected ones (fired elsewhere after the fault started)."""
    def where(alert: dict) -> str:
        labels = alert["labels"]
        return labels.get("host") or labels.get("node") or labels.get("instance") or ""

    def named(alerts: list[dict]) -> str:
        return ", ".join(str(a["alert"]) + (f" ({where(a)})" if where(a) else "") for a in alerts) or "none"

    declared = [f"{d['alert']} " + (f"{seconds_text(d['seconds_to_detect'])} (declared: {'ok' if d['met'] else 'LATE'})"
                                    if d["seconds_to_detect"] is not None else f"(declared: {NOT_DETECTED})")
                for d in run.detections if d["met"] is not None]
    sorted_alerts = run.alerts
    on_faulted = [f"{a['alert']} on {a['target']} {seconds_text(a['seconds_to_detect'])}"
                  for a in sorted_alerts["on_faulted"]]
    return (f"alerts that detected the fault (time to detect): {', '.join(declared + on_faulted) or 'none'}; "
            f"already firing before the fault: {named(sorted_alerts['before_fault'])}; "
            f"unexpected: {named(sorted_alerts['unexpected'])}")


def limit_sentence(check: LimitCheck) -> str:
    if check.met is None:
        return f"{check.limit} {check.bound:g}: not judged: {check.why}"
    return f"{check.limit} {check.bound:g}: measured {_measured(check)}: {'ok' if check.met else 'EXCEEDED'}"


def _measured(check: LimitCheck) -> str:
    value, unit = check.measured, LIMITS[check.limit].unit
    if unit == "percent":
        return ", ".join(f"{name} {'-' if v is None else f'{v:g} %'}" for name, v in value.items()) or "no HTTP target"
    if unit == "samples":
        return ", ".join(f"{name} {v} in a row" for name, v in value.items()) or "no HTTP target"
    if isinstance(value, dict):
        return ", ".join(f"{name} {seconds_text(v)}" for name, v in value.items()) or "no workload"
    if unit == "pods":
        return f"{value} lost"
    return "not recovered" if value is None else seconds_text(value)


def run_verdict(run: Run) -> str:
    """The run in a word, as ``chaos run`` judged it: FAULT NOT OBSERVED, EXCEEDED (an FMEA
    expectation missed), DEVIATED (a steady-state probe not met), ok (with the finding when the
    impact was lower than expected), or "-"."""
    if run.fault_proven is False:
        return NOT_OBSERVED
    if run.not_detected:
        return NOT_DETECTED
    if False in [e.met for e in expectations(run)]:
        return "EXCEEDED"
    checks = run.checks()
    if any(check.met is False for check in checks if check.kind == "probe"):
        return DEVIATED
    if not any(check.met for check in checks):
        return "-"
    return "ok, impact lower than expected" if run.impact_lower else "ok"


def score_text(run: Run) -> str:
    if run.score is None:
        return "- (nothing judged)"
    met, judged = run.points
    return f"{run.score:g} / 100 ({met} of {judged} weighted points met)"


def campaign_score_text(runs: Sequence[Scored]) -> str:
    score = campaign_score(runs)
    return "-" if score is None else f"{score:g} / 100 (the mean of the runs' scores)"


def fmea_sentence(run: Run) -> str:
    if run.fmea is None:
        return f"not usable: {run.fmea_error}"
    f = run.fmea
    return (f"{f['failure_mode']}: {f['category']}, severity {f['severity']}, impact {f['impact']}, "
            f"{f['recovery']} recovery within {seconds_text(float(f['recovery_seconds']))}, "
            f"detected by {detection_text(f['detection'])}")


def detection_text(detection: Any) -> str:
    """The FMEA's detection in words: a plain name, or "alert KubeAPIDown within 20 s, alert ..."."""
    alerts = measures.expected_alerts(detection)
    if not alerts:
        return str(detection)
    return ", ".join(f"alert {a['alert']}" + (f" within {seconds_text(a['within_seconds'])}"
                                              if a["within_seconds"] is not None else "") for a in alerts)


def steady_words(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "not checked"}[met]


def activity_details(activity: Activity, with_error: bool = True) -> list[str]:
    """What an activity did, as the story tells it, then its error's last line."""
    return output_lines(activity.output) + ([activity.error_line] if activity.error and with_error else [])


def output_text(output: Any) -> str:
    """An activity's output as indented JSON, cut where a whole object (a `get` probe) would bury the rest."""
    text = json.dumps(output, indent=1, ensure_ascii=False, default=str)
    if len(text) <= _OUTPUT_MAX:
        return text
    return text[:_OUTPUT_MAX] + f"\n… ({len(text) - _OUTPUT_MAX} more characters in the journal)"


def summary_rows(runs: list[Run]) -> list[dict[str, str]]:
    """The drill campaign: one row per run."""
    return [
        {
            "#": str(number),
            "scenario": run.title,
            "journal": run.source,
            "status": run.status,
            "deviated": "yes" if run.deviated else "no",
            "impact seen": run.impact_seen,
            "recovery seen": recovery_seen(run.recovery),
            "expected": expected_text(run.recovery),
            "verdict": run_verdict(run),
            "score": "-" if run.score is None else f"{run.score:g}",
        }
        for number, run in enumerate(runs, 1)
    ]


def offset_text(run: Run, moment: dt.datetime | None) -> str:
    offset = run.offset(moment)
    return "-" if offset is None else f"+{offset:.2f} s"


def recording_sentence(run: Run) -> str | None:
    """What the impact recording covers, or why it is missing; None without the recorder."""
    recording = run.recording
    if recording is None:
        return None
    if recording.missing:
        return f"impact recording missing: {recording.missing}"
    scope = ", ".join(recording.scope.get("namespaces") or []) or "the nodes"
    if recording.scope.get("label_selector"):
        scope += f" ({recording.scope['label_selector']})"
    parts = [f"impact recorded in {scope} from {offset_text(run, recording.started)} for "
             f"{seconds_text(recording.seconds)}: {len(recording.timeline)} entries"]
    if recording.dropped:
        parts.append(f"{recording.dropped} more dropped (the cap): the measures are incomplete")
    if recording.errors:
        parts.append(f"errors: {'; '.join(recording.errors[:3])}")
    if recording.alerts is not None:
        parts.append(alerts_sentence(run))
    return ", ".join(parts)


def impact_tables(run: Run) -> list[Table]:
    """The recorded impact, aligned with the run's clock: workloads' readiness, pods lost, nodes,
    API outages, HTTP targets (each table only when the recording has something for it)."""
    measures, recording = run.measures, run.recording
    if not measures or not recording:
        return []

    def at(t: Any) -> str:  # a time of the recording's clock, on the run's
        return offset_text(run, recording.at(t))

    def spans(windows: list[dict[str, Any]]) -> list[tuple[str, str, float | None]]:  # from, to, for
        return [(at(w.get("from")), "not back" if w.get("to") is None else at(w.get("to")),
                 None if None in (w.get("from"), w.get("to")) else round(w["to"] - w["from"], 3)) for w in windows]

    def windows(spans_of: list[dict[str, Any]]) -> str:
        return ", ".join(f"{start} to {end}" for start, end, _ in spans(spans_of)) or "-"
    readiness = recording.readiness()
    tables = []
    workloads = measures.get("workloads") or {}
    if workloads:
        tables.append(Table("Workloads", ["workload", "ready / desired over time", "below desired", "for",
                                          "back after the fault"], [
            [name, ", ".join(f"{ready}/{desired} at {offset_text(run, moment)}"
                             for moment, ready, desired in readiness.get(name, [])) or "-",
             windows(w.get("below_desired") or []), seconds_text(w.get("seconds_below_desired")),
             _after(w.get("recovered_after_fault_seconds"))]
            for name, w in workloads.items()]))
    lost = [(name, pod) for name, w in workloads.items() for pod in w.get("lost") or []]
    if lost:
        tables.append(Table("Pods lost", ["pod", "workload", "node", "reason", "at", "replacement", "Ready after"], [
            [pod.get("pod"), name, pod.get("node") or "-", pod.get("reason") or "-", at(pod.get("t")),
             pod.get("replacement") or "none", seconds_text(pod.get("replaced_after_seconds"))
             if pod.get("replaced_after_seconds") is not None else "not Ready"]
            for name, pod in lost]))
    nodes = measures.get("nodes") or {}
    if nodes:
        tables.append(Table("Nodes", ["node", "NotReady", "for", "taints seen", "Ready after the fault"], [
            [name, windows(n.get("not_ready") or []), seconds_text(n.get("seconds_not_ready")),
             ", ".join(n.get("taints_seen") or []) or "-", _after(n.get("ready_after_fault_seconds"))]
            for name, n in nodes.items()]))
    if recording.api_outages:
        tables.append(Table("API outages", ["from", "to", "for"], [
            [start, end, seconds_text(seconds)] for start, end, seconds in spans(recording.api_outages)]))
    http = measures.get("http") or {}
    if http:
        tables.append(Table("HTTP targets", ["target", "samples", "availability", "p50", "p95", "p99",
                                             "p50 / p95 during the fault", "longest failure streak",
                                             "error windows"], [
            [name, _samples(t), "-" if t.get("availability") is None else f"{t['availability']:g} %",
             *(_ms(t.get(p)) for p in ("p50", "p95", "p99")), _during(t.get("during_fault")),
             str(t.get("longest_failure_streak")),
             ", ".join(f"{start} to {end}" + (f" ({w['reason']})" if w.get("reason") else "")
                       for (start, end, _), w in zip(spans(t.get("error_windows") or []),
                                                      t.get("error_windows") or [])) or "-"]
            for name, t in http.items()]))
    return tables


def _samples(target: dict) -> str:
    """The samples judged, and those left out: failing before the target's first answer."""
    early = target.get("failing_at_start") or 0
    return f"{target.get('samples')}" + (f" (+{early} failing before its first answer, left out)" if early else "")


def _during(during: dict | None) -> str:
    """The latency of the attempts made while the faults were on, beside the whole recording's."""
    if not during or not during.get("samples"):
        return "-"
    return f"{_ms(during.get('p50'))} / {_ms(during.get('p95'))} ({during['samples']} samples)"


def _after(seconds: Any) -> str:
    return "not recovered" if seconds is None else seconds_text(seconds)


def _ms(seconds: Any) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def together_text(fault: FaultWindow) -> str:
    """Whether a fault's hosts started it at one instant, and how far apart they really did."""
    return "-" if fault.skew_seconds is None else skew_text(fault.skew_seconds)


def story(run: Run) -> list[str]:
    """The run as a short story, for a terminal (the text report begins with it): what ran, in
    the method and the rollbacks, how it ended and what its outputs say; told from the model."""
    steady = {check.phase: check.met for check in run.steady}

    def met(phase: str) -> str:
        return "not checked" if phase not in steady else "met" if steady[phase] else "NOT met"

    def took(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds:.1f} s"

    lines = [run.title, f"status: {run.status}, deviated: {run.deviated}, took {took(run.duration)}",
             f"steady state before: {met('before')}, after: {met('after')}"]
    for activity in (a for a in run.activities if a.phase in ("method", "rollback")):
        section = "method" if activity.phase == "method" else "rollbacks"
        status = status_words(activity.status, activity.unexpected_exit)
        lines.append(f"{section}: {activity.name}: {status} ({took(activity.seconds)})")
        lines += [f"    {line}" for line in output_lines(activity.output)]
    return lines
