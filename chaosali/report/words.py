"""The words every report format shares: a recovery, a verdict, an FMEA line, a campaign row."""

from __future__ import annotations

import datetime as dt

from chaosali.report.figures import NO_OUTAGE, NOT_RECOVERED, RECOVERED, Activity, Recovery, Run, seconds_text
from chaosali.report.story import output_lines

__all__ = [
    "activity_details", "expected_text", "fmea_sentence", "offset_text", "recovery_seen", "recovery_sentence",
    "steady_words", "summary_rows", "verdict",
]


def recovery_seen(recovery: Recovery) -> str:
    if recovery.state == RECOVERED:
        return seconds_text(recovery.measured)
    if recovery.state == NO_OUTAGE:
        return "0 s (no outage seen)"
    return recovery.state


def expected_text(recovery: Recovery) -> str:
    return "-" if recovery.expected is None else f"≤ {seconds_text(recovery.expected)}"


def verdict(recovery: Recovery) -> str:
    return {True: "EXCEEDED", False: "ok", None: "-"}[recovery.exceeded]


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


def fmea_sentence(run: Run) -> str:
    if run.fmea is None:
        return f"not usable: {run.fmea_error}"
    f = run.fmea
    return (f"{f['failure_mode']}: {f['category']}, severity {f['severity']}, impact {f['impact']}, "
            f"{f['recovery']} recovery within {seconds_text(float(f['recovery_seconds']))}, "
            f"detected by {f['detection']}")


def steady_words(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "not checked"}[met]


def activity_details(activity: Activity, with_error: bool = True) -> list[str]:
    """What an activity did, as the story tells it, then its error."""
    return output_lines(activity.output) + ([activity.error] if activity.error and with_error else [])


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
            "verdict": verdict(run.recovery),
        }
        for number, run in enumerate(runs, 1)
    ]


def offset_text(run: Run, moment: dt.datetime | None) -> str:
    offset = run.offset(moment)
    return "-" if offset is None else f"+{offset:.2f} s"
