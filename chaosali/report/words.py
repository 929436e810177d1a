"""The words every report format shares: a recovery, a verdict, an FMEA line, the expectations,
a campaign row."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from chaosali.report.figures import NO_OUTAGE, NOT_RECOVERED, RECOVERED, Activity, Recovery, Run, seconds_text
from chaosali.report.story import output_lines

__all__ = [
    "Expectation", "activity_details", "expectations", "expected_text", "fmea_sentence", "impact_sentence",
    "impact_verdict", "offset_text", "output_text", "recovery_seen", "recovery_sentence", "steady_words",
    "summary_rows", "verdict",
]

_OUTPUT_MAX = 6000  # characters of an activity's output shown


@dataclass(frozen=True)
class Expectation:
    """One FMEA expectation of a run, judged by ``figures``: met, missed, or None (cannot tell)."""

    name: str  # stable from run to run of one experiment, e.g. "recovery within 30 s"
    met: bool | None
    sentence: str  # what was measured against what, or why it cannot be


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
    return f"{level}, expected at most {run.fmea['impact']}: {_flag(run.impact_exceeded)}"


def impact_sentence(run: Run) -> str:
    return f"{run.impact_seen}; {impact_verdict(run)}"


def _flag(exceeded: bool | None) -> str:
    return {True: "EXCEEDED", False: "ok", None: "-"}[exceeded]


def expectations(run: Run) -> list[Expectation]:
    """What the FMEA expects of the run (recovery time, impact), each met or missed."""
    recovery, fmea = run.recovery, run.fmea
    recovery_name = f"recovery within {seconds_text(recovery.expected)}" if fmea else "recovery"
    impact_name = f"impact at most {fmea['impact']}" if fmea else "impact"
    return [
        Expectation(recovery_name, None if recovery.exceeded is None else not recovery.exceeded,
                    recovery_sentence(recovery)),
        Expectation(impact_name, None if run.impact_exceeded is None else not run.impact_exceeded,
                    impact_sentence(run)),
    ]


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
            "verdict": verdict(run.recovery),
        }
        for number, run in enumerate(runs, 1)
    ]


def offset_text(run: Run, moment: dt.datetime | None) -> str:
    offset = run.offset(moment)
    return "-" if offset is None else f"+{offset:.2f} s"
