"""``chaosali report --format junit``: drills as a test run, for a CI system (Jenkins, GitLab...).

One ``<testsuite>`` per journal, all inside one ``<testsuites>``; its test cases:

- each steady-state probe of each hypothesis check (before, during, after): a failure when its
  tolerance was not met, an error when it raised. The probes of a check that never ran (the run
  stopped first) are skipped, so one experiment always gives the same tests;
- each FMEA expectation (``words.expectations``: impact, fault proven, recovery time, the
  limits judged against the impact recording): a failure when missed, skipped when the journal
  cannot tell;
- a journal with parts left out as unusable (``chaosali.report.journal``): an error;
- each method or rollback activity that failed, or whose process exited non-zero where no
  tolerance asked for it: an error. The others are the drill's steps, not tests.

Over several runs of an experiment, one more ``<testsuite>`` per trend (``chaosali.report.trends``)
judges its newest run: one test case per measure and one for the verdict, a failure when that
run regressed (worse than the runs before it by more than the margin), so that a CI job that
reports the journals after each drill stops on a regression. The trend's older regressions are
in the suite's ``system-out`` (and in every other format).

The XML is built with ElementTree from the redacted figures, so it holds no secret.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from chaosali.report.figures import Run
from chaosali.report.model import Activity
from chaosali.report.trends import SCORE, VERDICT, Report, Trend
from chaosali.report.words import activity_details, expectations, output_text

__all__ = ["junit_report"]

# XML 1.0 cannot carry most control characters (terminal colours in a stderr, say): a report
# that a CI system refuses to parse shows nothing at all.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_EXCEPTION = re.compile(r"[\w.]+")


def junit_report(report: Report) -> str:
    suites = ET.Element("testsuites", name="chaosali report")
    for number, run in enumerate(report.runs, 1):
        suites.append(_suite(run, number))
    for number, trend in enumerate(report.trends, len(report.runs) + 1):
        suites.append(_trend_suite(trend, number))
    for count in ("tests", "failures", "errors"):
        suites.set(count, str(sum(int(suite.get(count, 0)) for suite in suites)))
    suites.set("time", _seconds(sum(float(suite.get("time", 0)) for suite in suites)))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _suite(run: Run, number: int) -> ET.Element:
    suite = ET.Element("testsuite", name=_text(run.title), id=str(number), file=_text(run.source))
    if run.start:
        suite.set("timestamp", run.start.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))  # UTC
    if run.duration is not None:
        suite.set("time", _seconds(run.duration))
    properties = ET.SubElement(suite, "properties")
    shown = {"journal": run.source, "status": run.status, "deviated": str(run.deviated).lower(),
             "resilience_score": "-" if run.score is None else f"{run.score:g}"}
    # a detection of alerts is JSON, as the experiment wrote it
    shown |= {f"fmea.{name}": json.dumps(value) if isinstance(value, (dict, list)) else value
              for name, value in (run.fmea or {}).items()}
    for name, value in shown.items():
        ET.SubElement(properties, "property", name=name, value=_text(value))
    # a journal named like a Java class would split into packages at its dots
    root = Path(run.source).stem.replace(".", "-")
    cases = _problem_cases(run, root) + _steady_cases(run, root) + _expectation_cases(run, root) + _activity_cases(run, root)
    _add_cases(suite, cases)
    return suite


def _add_cases(suite: ET.Element, cases: list[ET.Element]) -> None:
    suite.extend(cases)
    suite.set("tests", str(len(cases)))
    for count, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
        suite.set(count, str(sum(case.find(tag) is not None for case in cases)))


def _trend_suite(trend: Trend, number: int) -> ET.Element:
    """The newest run of a trend against the runs before it: a failure per measure it regressed on."""
    newest = trend.points[-1]
    suite = ET.Element("testsuite", name=_text(f"trend: {trend.title}"), id=str(number), file=_text(newest.source))
    classname = _text(f"trend.{Path(newest.source).stem.replace('.', '-')}")
    flagged = {regression.measure: regression for regression in trend.flagged(newest)}
    cases = []
    for measure, unit in [(VERDICT, VERDICT), *trend.measures]:
        if unit == SCORE:
            continue
        case = ET.Element("testcase", name=_text(f"{measure} not worse than the runs before"), classname=classname)
        if measure in flagged:
            _outcome(case, "failure", flagged[measure].text(), "regression")
        elif unit != VERDICT and newest.value(measure) is None:
            _outcome(case, "skipped", f"{measure}: not measured in the newest run, {newest.source}")
        cases.append(case)
    _add_cases(suite, cases)
    older = [r.line() for r in trend.regressions if r.point is not newest]
    if older:
        ET.SubElement(suite, "system-out").text = _text("regressions before the newest run:\n" + "\n".join(older))
    return suite


def _problem_cases(run: Run, root: str) -> list[ET.Element]:
    """A journal with parts left out (``chaosali.report.journal``): an error, as the report is incomplete."""
    if not run.problems:
        return []
    case = ET.Element("testcase", name="journal readable", classname=_text(f"{root}.journal"))
    _outcome(case, "error", f"{len(run.problems)} problems: parts of the journal left out", "journal",
             "\n".join(run.problems))
    return [case]


def _steady_cases(run: Run, root: str) -> list[ET.Element]:
    cases = []
    during = 0
    for check in run.steady:
        during += check.phase == "during"
        phase = f"during-{during}" if check.phase == "during" else check.phase  # several checks: one class each
        for probe in check.probes:
            case = _case(f"{root}.steady-state.{phase}", probe.name, probe)
            if probe.error:
                _error(case, probe)
            elif probe.tolerance_met is False:
                _outcome(case, "failure", f"tolerance not met: expected {_json(probe.tolerance)}, got "
                         f"{_json(probe.output)}", "tolerance")
            _output(case, probe)
            cases.append(case)
    for phase, name in run.unchecked_probes():
        case = ET.Element("testcase", name=_text(name), classname=_text(f"{root}.steady-state.{phase}"))
        _outcome(case, "skipped", f"not checked: the run stopped before it ({run.status})")
        cases.append(case)
    return cases


def _expectation_cases(run: Run, root: str) -> list[ET.Element]:
    cases = []
    for expectation in expectations(run):
        case = ET.Element("testcase", name=_text(expectation.name), classname=_text(f"{root}.fmea"))
        if expectation.met is None:
            _outcome(case, "skipped", expectation.sentence)
        elif not expectation.met:
            _outcome(case, "failure", expectation.sentence, "expectation")
        else:
            ET.SubElement(case, "system-out").text = _text(expectation.sentence)
        cases.append(case)
    return cases


def _activity_cases(run: Run, root: str) -> list[ET.Element]:
    cases = []
    for activity in run.activities:
        if activity.phase not in ("method", "rollback") or not (activity.error or activity.unexpected_exit):
            continue
        case = _case(f"{root}.{activity.phase}", activity.name, activity)
        if activity.error:
            _error(case, activity)
        else:
            _outcome(case, "error", f"exit status {activity.unexpected_exit}", "exit status",
                     "\n".join(activity_details(activity)))
        _output(case, activity)
        cases.append(case)
    return cases


def _case(classname: str, name: str, activity: Activity) -> ET.Element:
    case = ET.Element("testcase", name=_text(name), classname=_text(classname))
    if activity.start and activity.end:
        case.set("time", _seconds((activity.end - activity.start).total_seconds()))
    return case


def _error(case: ET.Element, activity: Activity) -> None:
    kind = activity.error_line.split(":", 1)[0]
    _outcome(case, "error", activity.error_line, kind if _EXCEPTION.fullmatch(kind) else "error", activity.error)


def _outcome(case: ET.Element, tag: str, message: str, kind: str | None = None, text: str | None = None) -> None:
    element = ET.SubElement(case, tag, message=_text(message))
    if kind:
        element.set("type", kind)
    if text:
        element.text = _text(text)


def _output(case: ET.Element, activity: Activity) -> None:
    if activity.output is not None:
        ET.SubElement(case, "system-out").text = _text(output_text(activity.output))


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:199] + "…"


def _seconds(seconds: float) -> str:
    # the schema's time: digits and at most three decimals, never negative
    return f"{max(seconds, 0.0):.3f}"


def _text(value: Any) -> str:
    return _NOT_XML.sub("", str(value))
