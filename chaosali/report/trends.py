"""Trends across runs: the runs of each experiment in time order, their measures, and the
regressions among them.

Each run is a ``Point``: its verdict, whether its fault was proven, its impact level, and its
measures (``Value``): the recovery, the API down, the pods lost, the worst time a workload ran
below its desired replicas, the time to detect each alert the FMEA declares, the availability of
each HTTP target, and the score; each with the FMEA's limit for it, where the FMEA sets one. A
point is small: a year of nightly journals is read one journal at a time, and only the points
are kept (``chaosali.report.render.load_report``).

The runs of one experiment (one title) make its ``Trend``, ordered by the time they started.

Regressions
-----------
A run regressed when one of its measures is worse than the **median of the previous runs** of
its experiment (the last ``BASELINE_RUNS`` of them that have that measure) by more than the
margin (``Margin``):

- a time (recovery, API down, below desired, time to detect): above the median by more than the
  margin's per cent of it (default 50 %) **and** by at least its seconds (default 1 s);
- pods lost: any increase over the median;
- an availability: its unavailability (100 − availability) above the median's by more than the
  margin's per cent and by at least one point;
- the verdict: red (EXCEEDED, FAULT NOT OBSERVED, NOT DETECTED, DEVIATED) where the run before
  was not.

The score is charted, not judged: a verdict that turns red is what a lower score means.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field
from typing import Any

from chaosali.core import args
from chaosali.report.figures import Run
from chaosali.report.model import seconds_text
from chaosali.report.recovery import CORE_SUBJECTS
from chaosali.report.words import RED_VERDICTS, run_verdict

__all__ = ["BASELINE_RUNS", "DEFAULT_MARGIN", "Margin", "Point", "Regression", "Report", "Trend", "Value", "point_of", "trends_of",
           "unreadable_point"]

BASELINE_RUNS = 10  # the previous runs a measure is compared with: recent enough to be today's normal
SECONDS, PODS, PERCENT, SCORE = "seconds", "pods", "percent", "score"
VERDICT = "verdict"
WORSE = "▲"  # a measure worse than the runs before, in a trend's table


@dataclass(frozen=True)
class Margin:
    """How much worse than the median of the previous runs a measure must be to be a regression."""

    percent: float = 50.0
    seconds: float = 1.0

    def __post_init__(self) -> None:
        args.number(self.percent, "the margin (--margin, per cent)", 0)
        args.number(self.seconds, "the margin's seconds (--margin-seconds)", 0)

    def worse(self, unit: str, value: float, median: float) -> bool:
        if unit == PODS:
            return value > median
        if unit == PERCENT:  # availability: compare what was unavailable
            value, median, floor = 100 - value, 100 - median, 1.0
        elif unit == SECONDS:
            floor = self.seconds
        else:
            return False  # the score: charted, not judged
        return value - median > median * self.percent / 100 and value - median >= floor


DEFAULT_MARGIN = Margin()


@dataclass(frozen=True)
class Value:
    """One measure of a run, and the FMEA's limit for it (None: the FMEA sets none)."""

    measure: str  # "recovery", "API down", "time to detect KubeAPIDown", "availability web"...
    unit: str  # seconds, pods, percent, score
    value: float | None  # None: not measured in this run
    limit: float | None = None


@dataclass(frozen=True)
class Point:
    """A run as its trend sees it: small, so that thousands fit in memory."""

    source: str
    title: str
    start: dt.datetime | None
    status: str
    verdict: str
    proven: bool | None
    impact: str | None
    values: tuple[Value, ...]
    unreadable: str = ""  # why the journal could not be read
    deviated: bool = False
    recovery_exceeded: bool = False
    impact_exceeded: bool = False
    not_detected: bool = False

    @property
    def red(self) -> bool:
        return self.verdict in RED_VERDICTS

    @property
    def score(self) -> float | None:
        return self.value("score")

    def value(self, measure: str) -> float | None:
        return next((v.value for v in self.values if v.measure == measure), None)

    @property
    def day(self) -> str:
        return self.start.strftime("%Y-%m-%d %H:%M") if self.start else "-"


@dataclass(frozen=True)
class Regression:
    """A run worse than the runs before it: which measure, by how much, against which runs."""

    point: Point
    measure: str
    unit: str
    value: float | str
    baseline: float | str  # the median of the runs compared with, or the previous verdict
    compared: tuple[Point, ...]

    def line(self) -> str:
        """The regression in a line: the experiment, the run, and the text."""
        return f"{self.point.title}: {self.point.source} ({self.point.day}): {self.text()}"

    def text(self) -> str:
        names = [p.source for p in self.compared]
        against = ", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]}"
        if self.unit == VERDICT:
            return f"verdict {self.value}, the run before {self.baseline} ({against})"
        assert isinstance(self.value, float) and isinstance(self.baseline, float)
        return (f"{self.measure} {value_text(self.unit, self.value)}, {self._change()}the median of the "
                f"{len(self.compared)} runs before {value_text(self.unit, self.baseline)} ({against})")


    def _change(self) -> str:
        """How much worse than the median: "+122 %, ", "+1, ", "1.5 points lower, "."""
        assert isinstance(self.value, float) and isinstance(self.baseline, float)
        if self.unit == PERCENT:
            return f"{self.baseline - self.value:.3g} points lower, "
        if self.unit == PODS:
            return f"+{self.value - self.baseline:g}, "
        return f"+{(self.value - self.baseline) / self.baseline * 100:.0f} %, " if self.baseline else ""


@dataclass
class Trend:
    """The runs of one experiment, oldest first, and their regressions."""

    title: str
    points: list[Point]
    regressions: list[Regression] = field(default_factory=list)

    @property
    def measures(self) -> list[tuple[str, str]]:
        """(measure, unit) of every measure some run of the trend has a value of, in the runs' order."""
        found: dict[str, str] = {}
        for point in self.points:
            for value in point.values:
                if value.value is not None:
                    found.setdefault(value.measure, value.unit)
        return list(found.items())

    def limit(self, measure: str) -> float | None:
        """The FMEA's limit of a measure in the newest run that has one."""
        return next((v.limit for p in reversed(self.points) for v in p.values
                     if v.measure == measure and v.limit is not None), None)

    def flagged(self, point: Point) -> list[Regression]:
        return [r for r in self.regressions if r.point is point]


def value_text(unit: str, value: float | None) -> str:
    if value is None:
        return "-"
    if unit == SECONDS:
        return seconds_text(value)
    if unit == PERCENT:
        return f"{value:g} %"
    return f"{value:g}"


def point_of(run: Run) -> Point:
    """A run's point: its verdict and measures, each with the FMEA's limit."""
    measures, fmea = run.measures or {}, run.fmea or {}
    api_down = measures.get("api_down_seconds") if run.measures else _api_down_seen(run)
    below = [w["seconds_below_desired"] for w in (measures.get("workloads") or {}).values()
             if isinstance(w, dict) and isinstance(w.get("seconds_below_desired"), (int, float))]
    values = [
        Value("recovery", SECONDS, run.recovery.measured, run.recovery.expected),
        Value("API down", SECONDS, _number(api_down), _number(fmea.get("max_api_down_seconds"))),
        Value("pods lost", PODS, _number(measures.get("pods_lost")), _number(fmea.get("max_pods_lost"))),
        Value("worst below desired", SECONDS, max(below) if below else None,
              _number(fmea.get("max_unavailable_seconds"))),
        *(Value(f"time to detect {d['alert']}", SECONDS, _number(d["seconds_to_detect"]), _number(d["within_seconds"]))
          for d in run.detections),
        *(Value(f"availability {name}", PERCENT, _number(t.get("availability")), _number(fmea.get("min_availability")))
          for name, t in (measures.get("http") or {}).items() if isinstance(t, dict)),
        Value("score", SCORE, run.score),
    ]
    return Point(run.source, run.title, run.start, run.status, run_verdict(run), run.fault_proven, run.impact_level,
                 tuple(values), deviated=run.deviated, recovery_exceeded=run.recovery.exceeded is True,
                 impact_exceeded=run.impact_exceeded is True, not_detected=run.not_detected)


def unreadable_point(source: str, why: str) -> Point:
    """A journal that could not be read: listed, in no trend."""
    return Point(source, source, None, "unreadable", "-", None, None, (), why)


def _api_down_seen(run: Run) -> float | None:
    """Without an impact recording: how long the journal's own watches saw the API down."""
    seen = [outage.seconds for outage in run.outages if outage.subject in CORE_SUBJECTS]
    return round(sum(seen), 3) if seen else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def trends_of(points: list[Point], margin: Margin = DEFAULT_MARGIN) -> list[Trend]:
    """The trend of each experiment run more than once, in the order first seen, with its regressions."""
    groups: dict[str, list[Point]] = {}
    for point in points:
        if not point.unreadable:
            groups.setdefault(point.title, []).append(point)
    trends = []
    for title, runs in groups.items():
        if len(runs) < 2:
            continue
        ordered = sorted(runs, key=lambda p: (p.start is None, p.start or dt.datetime.min.replace(tzinfo=dt.timezone.utc)))
        trends.append(Trend(title, ordered, _regressions(ordered, margin)))
    return trends


def _regressions(points: list[Point], margin: Margin) -> list[Regression]:
    found = []
    history: dict[str, list[Point]] = {}  # per measure, the runs that have it, oldest first
    for index, point in enumerate(points):
        before = points[index - 1] if index else None
        if before is not None and point.red and not before.red:
            found.append(Regression(point, VERDICT, VERDICT, point.verdict, before.verdict, (before,)))
        for value in point.values:
            if value.value is None:
                continue
            previous = history.setdefault(value.measure, [])[-BASELINE_RUNS:]
            numbers = [p.value(value.measure) for p in previous]
            if numbers:
                median = float(statistics.median(n for n in numbers if n is not None))
                if margin.worse(value.unit, value.value, median):
                    found.append(Regression(point, value.measure, value.unit, value.value, median, tuple(previous)))
            history[value.measure] = [*previous, point]
    return found


@dataclass
class Report:
    """What a report shows: the runs reported in full, and every run read as a point of its
    experiment's trend."""

    runs: list[Run]
    points: list[Point]
    trends: list[Trend]

    @classmethod
    def of(cls, runs: list[Run], margin: Margin = DEFAULT_MARGIN) -> Report:
        points = [point_of(run) for run in runs]
        return cls(runs, points, trends_of(points, margin))

    @property
    def unreadable(self) -> list[Point]:
        return [point for point in self.points if point.unreadable]

    @property
    def left_out(self) -> int:
        """Runs read but not reported in full (a large campaign)."""
        return len(self.points) - len(self.runs)

    @property
    def regressions(self) -> list[Regression]:
        """Every trend's regressions, the newest first: what changed lately leads."""
        found = [regression for trend in self.trends for regression in trend.regressions]
        return sorted(found, key=lambda r: r.point.start.timestamp() if r.point.start else 0, reverse=True)

    @property
    def counted(self) -> str:
        """"4 runs", "5475 runs of 15 experiments"."""
        experiments = len({point.title for point in self.points if not point.unreadable})
        return f"{len(self.points)} runs" + (f" of {experiments} experiments" if experiments > 1 else "")

    @property
    def regressions_title(self) -> str:
        runs, measures = len({id(r.point) for r in self.regressions}), len(self.regressions)
        return (f"Regressions: {runs} run{'s' * (runs > 1)} worse than the runs before them "
                f"({measures} measure{'s' * (measures > 1)}), the newest first")

    @property
    def left_out_sentence(self) -> str:
        return (f"{len(self.points)} runs: each is a row of its experiment's trend; the {len(self.runs)} newest of "
                "those that regressed are reported in full after the trends (chaosali report JOURNAL for any other)")


TABLE_ROWS = 30  # runs a trend's table shows: the newest, and every one flagged before them


@dataclass(frozen=True)
class TrendTable:
    """A trend as a table, as every format shows it: one row per run (the newest and the flagged)."""

    header: list[str]
    rows: list[list[str]]
    flagged: list[list[bool]]  # per cell: a regression of this run in this column
    note: str  # the runs left out of the table, if any

    @property
    def marked(self) -> list[list[str]]:
        """The rows, each flagged cell marked ▲ (text, Markdown)."""
        return [[cell + (f" {WORSE}" if flag else "") for cell, flag in zip(row, flags)]
                for row, flags in zip(self.rows, self.flagged)]


def trend_table(trend: Trend) -> TrendTable:
    measures = trend.measures
    newest = trend.points[-TABLE_ROWS:]
    shown = [p for p in trend.points[:-TABLE_ROWS] if trend.flagged(p)] + newest
    header = ["#", "started", "journal", "verdict", "proven", "impact",
              *(name + _limit_text(unit, trend.limit(name)) for name, unit in measures)]
    rows, flags = [], []
    numbers = {id(p): n for n, p in enumerate(trend.points, 1)}
    for point in shown:
        worse = {r.measure for r in trend.flagged(point)}
        proven = {True: "yes", False: "NO", None: "-"}[point.proven]
        rows.append([str(numbers[id(point)]), point.day, point.source, point.verdict, proven, point.impact or "-",
                     *(value_text(unit, point.value(name)) for name, unit in measures)])
        flags.append([False, False, False, VERDICT in worse, False, False, *(name in worse for name, _ in measures)])
    left = len(trend.points) - len(shown)
    note = (f"{len(trend.points)} runs: the table shows the newest {len(newest)} and those flagged before them; "
            "the charts and the JSON report have every run" if left else "")
    return TrendTable(header, rows, flags, note)


def _limit_text(unit: str, limit: float | None) -> str:
    return "" if limit is None else f" ({'≥' if unit == PERCENT else '≤'} {value_text(unit, limit)})"


def trend_figures(trend: Trend) -> dict[str, Any]:
    """The JSON-able trend: each run's series, the limits, the regressions."""
    return {
        "experiment": trend.title,
        "limits": {name: trend.limit(name) for name, _ in trend.measures if trend.limit(name) is not None},
        "runs": [{"journal": p.source, "start": p.start.isoformat() if p.start else None, "status": p.status,
                  "verdict": p.verdict, "proven": p.proven, "impact": p.impact,
                  "measures": {v.measure: v.value for v in p.values}} for p in trend.points],
        "regressions": [regression_figures(r) for r in trend.regressions],
    }


def regression_figures(regression: Regression) -> dict[str, Any]:
    return {"experiment": regression.point.title, "journal": regression.point.source,
            "start": regression.point.start.isoformat() if regression.point.start else None,
            "measure": regression.measure, "value": regression.value, "baseline": regression.baseline,
            "compared_with": [p.source for p in regression.compared], "text": regression.text()}
